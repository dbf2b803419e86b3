#!/usr/bin/env python3
"""Runs llama.cpp's convert_hf_to_gguf.py on a moat checkpoint (transformers Llama layout).

    python llamacpp_convert.py LLAMA_CPP_DIR HF_DIR --outtype f32 --outfile model-f32.gguf

llama.cpp recognises a BPE pre-tokenizer by hashing how the tokenizer splits a probe string,
and refuses tokenizers it has no hash for (ours is trained by model-assets/train). The weights
convert the same either way; this wrapper labels an unknown pre-tokenizer "gpt-2" (ours is
GPT-2's byte-level regex after an indentation split), which is what llama-bench's speed
figures need. Do not use the result for llama.cpp's own tokenization of prompts. It also skips
the SentencePiece vocabulary paths (our checkpoints have only tokenizer.json).
"""

import runpy
import sys
from pathlib import Path


def main() -> None:
    llama = Path(sys.argv[1]).resolve()
    sys.path.insert(0, str(llama / "gguf-py"))
    sys.path.insert(0, str(llama))
    from conversion import base  # llama.cpp's converter package

    original = base.TextModel.get_vocab_base_pre

    def vocab_base_pre(self, tokenizer) -> str:
        try:
            return original(self, tokenizer)
        except NotImplementedError:
            return "gpt-2"

    base.TextModel.get_vocab_base_pre = vocab_base_pre

    # Our checkpoints carry a byte-level BPE tokenizer.json and no SentencePiece model: go
    # straight to the GPT-2-style vocabulary path (the converter would first import
    # sentencepiece, which is not installed, before noticing there is no tokenizer.model).
    def no_sentencepiece(self, *args, **kwargs):
        raise FileNotFoundError("no tokenizer.model (byte-level BPE checkpoint)")

    base.TextModel._set_vocab_sentencepiece = no_sentencepiece
    base.TextModel._set_vocab_llama_hf = no_sentencepiece
    sys.argv = [str(llama / "convert_hf_to_gguf.py"), *sys.argv[2:]]
    runpy.run_path(sys.argv[0], run_name="__main__")


if __name__ == "__main__":
    main()
