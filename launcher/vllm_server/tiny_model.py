"""Builds the embedded default model: a tiny random-weight Llama with a locally trained tokenizer.

It exists so the launcher and its tests run a real vLLM where no model hub can be reached.
The weights are random, so the text it writes is noise; the serving path is real.
This file imports nothing from the launcher: it runs as a script under vLLM's own Python.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import sysconfig
from pathlib import Path

TINY_MODEL_NAME = "tiny-llama"
_FORMAT_VERSION = 1
_MARKER = "serve-with-monitoring-tiny-model.json"
_CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "<|{{ message['role'] }}|>\n{{ message['content'] }}</s>\n"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>\n{% endif %}"
)


def _training_corpus(limit_bytes: int = 4_000_000) -> list[str]:
    """Python's own stdlib sources: always present, offline, and varied enough for a BPE."""
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    texts: list[str] = []
    total = 0
    for path in sorted(stdlib.glob("*.py")):
        text = path.read_text(encoding="utf-8", errors="ignore")
        texts.append(text)
        total += len(text)
        if total >= limit_bytes:
            break
    return texts


def is_built(directory: Path) -> bool:
    marker = directory / _MARKER
    try:
        return json.loads(marker.read_text())["format"] == _FORMAT_VERSION
    except (OSError, ValueError, KeyError):
        return False


def build_tiny_model(directory: Path, seed: int = 0) -> Path:
    """Write config, safetensors weights and tokenizer into `directory`. Idempotent and atomic."""
    if is_built(directory):
        return directory
    # Imported here: these come with vLLM, not with the light runtime package.
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    staging = directory.with_name(f".{directory.name}.{os.getpid()}.tmp")
    staging.mkdir(parents=True, exist_ok=True)
    special = ["<unk>", "<s>", "</s>", "<pad>"]
    bpe = Tokenizer(models.BPE(unk_token="<unk>"))
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=2048,
        special_tokens=special,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    bpe.train_from_iterator(_training_corpus(), trainer=trainer)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=bpe,
        unk_token="<unk>",
        bos_token="<s>",
        eos_token="</s>",
        pad_token="<pad>",
    )
    tokenizer.chat_template = _CHAT_TEMPLATE

    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=128,
        intermediate_size=256,
        num_hidden_layers=2,
        num_attention_heads=4,  # head_dim 32: the CPU attention backend rejects 16
        num_key_value_heads=4,
        max_position_embeddings=2048,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        torch_dtype="float32",
    )
    LlamaForCausalLM(config).save_pretrained(staging, safe_serialization=True)
    tokenizer.save_pretrained(staging)
    (staging / _MARKER).write_text(json.dumps({"format": _FORMAT_VERSION, "seed": seed}))
    if directory.exists() and not is_built(directory):
        shutil.rmtree(directory, ignore_errors=True)  # the remains of an interrupted build
    try:
        os.replace(staging, directory)
    except OSError:
        if not is_built(directory):  # another builder won the race; theirs is as good as ours
            raise
        shutil.rmtree(staging, ignore_errors=True)
    return directory


def default_model_dir(cache_dir: Path) -> Path:
    return cache_dir / f"{TINY_MODEL_NAME}-v{_FORMAT_VERSION}"


if __name__ == "__main__":
    # Run by the launcher with vLLM's interpreter, so the launcher never imports torch itself.
    build_tiny_model(Path(sys.argv[1]))
