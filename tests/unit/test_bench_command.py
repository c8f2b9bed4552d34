from launcher.commands.bench import bench_argv, parser

INFO = {
    "vllm_bin": "/v/bin/vllm",
    "vllm_url": "http://127.0.0.1:8000",
    "model_name": "tiny-llama",
    "model": "/cache/tiny-llama-v1",
}


def test_random_dataset_by_default():
    argv = bench_argv(INFO, parser().parse_args([]))
    assert argv[:3] == ["/v/bin/vllm", "bench", "serve"]
    assert argv[argv.index("--dataset-name") + 1] == "random"
    assert argv[argv.index("--base-url") + 1] == "http://127.0.0.1:8000"
    assert argv[argv.index("--model") + 1] == "tiny-llama"
    assert argv[argv.index("--tokenizer") + 1] == "/cache/tiny-llama-v1"


def test_sharegpt_when_a_file_is_given_and_extra_options_pass_through(tmp_path):
    data = tmp_path / "sharegpt.json"
    argv = bench_argv(INFO, parser().parse_args(["--sharegpt", str(data), "--", "--max-concurrency", "4"]))
    assert argv[argv.index("--dataset-name") + 1] == "sharegpt"
    assert argv[argv.index("--dataset-path") + 1] == str(data)
    assert argv[-2:] == ["--max-concurrency", "4"]
    assert "--random-input-len" not in argv
