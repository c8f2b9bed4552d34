from launcher.commands.main import run

run()
