"""vLLM as the supervised child: its command line and flags, what it listens on, what it can do, how
to tell it is healthy and making progress, and the tiny model served by default. (Not named `vllm`,
which would shadow the real package.)"""
