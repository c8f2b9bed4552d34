"""Helpers start from an allowlist of the launcher's environment: no secret reaches them."""

from launcher.helper_environment import helper_environment


def test_secrets_stay_behind_and_what_helpers_need_comes_along():
    base = {
        "PATH": "/usr/bin",
        "LANG": "C.UTF-8",
        "LC_ALL": "C",
        "HF_TOKEN": "hf_x",
        "VLLM_API_KEY": "k",
        "AWS_SECRET_ACCESS_KEY": "a",
        "GOOGLE_APPLICATION_CREDENTIALS": "/creds.json",
        "HTTPS_PROXY": "http://proxy:3128",
        "SWM_LOG_LEVEL": "DEBUG",
        "SWM_WEBHOOK_TOKEN": "t",  # a prefix lets a name in, unless it names a secret
        "NODE_NAME": "node-1",
    }
    env = helper_environment({"PYTHONUNBUFFERED": "1"}, base=base)
    assert env == {
        "PATH": "/usr/bin",
        "LANG": "C.UTF-8",
        "LC_ALL": "C",
        "HTTPS_PROXY": "http://proxy:3128",
        "SWM_LOG_LEVEL": "DEBUG",
        "NODE_NAME": "node-1",
        "PYTHONUNBUFFERED": "1",
    }
