#!/usr/bin/env python3
"""Step 3: train a byte-level BPE tokenizer on the curated training split.

    python tokenizer.py [--curated work/curated] [--out work/tokenizer] [--vocab-size 16384]
                        [--max-mb 200] [--force]

Special tokens get ids 0..4: <|endoftext|> <|fim_prefix|> <|fim_middle|> <|fim_suffix|>
<|file_sep|>. Pre-tokenizer: a newline with the indentation after it is split off as its own
piece (Split r"\r?\n[ \t]*", isolated), then ByteLevel(add_prefix_space=False, use_regex=True)
(GPT-2 regex); ByteLevel decoder, so every byte sequence round-trips. The split makes the
tokens of "prefix up to a line's indentation" + "rest of the line" equal to those of the whole
text, which is what an editor prompt needs (--no-split-indent: plain GPT-2 behaviour).
Writes <out>/tokenizer.json.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, processors, trainers

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import SPECIAL_TOKENS, WORK, log, read_shards, shard_paths, skip_if_done, write_json  # noqa: E402


INDENT_PATTERN = r"\r?\n[ \t]*"


def build_tokenizer(texts, vocab_size: int, split_indent: bool = True) -> Tokenizer:
    tok = Tokenizer(models.BPE())
    byte_level = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    if split_indent:
        # A newline and the indentation after it form their own pre-token, so the first word
        # of a line never carries a space (GPT-2's regex gives "\n   " + " return"). A
        # prompt whose prefix ends after a line's indentation (the editor's cursor) is then
        # tokenized exactly as in training.
        tok.pre_tokenizer = pre_tokenizers.Sequence([
            pre_tokenizers.Split(Regex(INDENT_PATTERN), behavior="isolated"), byte_level])
    else:
        tok.pre_tokenizer = byte_level
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=2,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer=trainer)
    return tok


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--curated", type=Path, default=WORK / "curated")
    ap.add_argument("--out", type=Path, default=WORK / "tokenizer")
    ap.add_argument("--vocab-size", type=int, default=16384)
    ap.add_argument("--max-mb", type=float, default=200.0, help="training text budget")
    ap.add_argument("--no-split-indent", action="store_true",
                    help="plain GPT-2 pre-tokenization (indentation merges with the next word)")
    ap.add_argument("--force", action="store_true")
    args = ap.parse_args(argv)

    path = args.out / "tokenizer.json"
    if skip_if_done(path, args.force, "tokenizer"):
        return
    shards = shard_paths(args.curated, "train")
    if not shards:
        sys.exit(f"tokenizer: no train shards in {args.curated} (run curate.py first)")
    budget = int(args.max_mb * 1e6)
    stats = {"files": 0, "chars": 0}

    def texts():
        for rec in read_shards(shards):
            if stats["chars"] >= budget:
                return
            stats["files"] += 1
            stats["chars"] += len(rec["content"])
            yield rec["content"]

    log(f"tokenizer: training BPE, vocab {args.vocab_size}, up to {args.max_mb} MB ...")
    tok = build_tokenizer(texts(), args.vocab_size, split_indent=not args.no_split_indent)
    for i, s in enumerate(SPECIAL_TOKENS):
        assert tok.token_to_id(s) == i, (s, tok.token_to_id(s))
    sample = "def f(x):\n    return x + 1  # ünïcode ✓\n\r\n\t\tx\n"
    assert tok.decode(tok.encode(sample).ids) == sample, "tokenizer does not round-trip"
    if not args.no_split_indent:
        # prefix-stable at a line's indentation
        pre, body = "def f(x):\n    ", "return x"
        assert tok.encode(pre + body).ids == tok.encode(pre).ids + tok.encode(body).ids
    args.out.mkdir(parents=True, exist_ok=True)
    tok.save(str(path.with_suffix(".json.tmp")))
    path.with_suffix(".json.tmp").replace(path)
    write_json(args.out / "stats.json", stats | {"vocab_size": tok.get_vocab_size()})
    log(f"tokenizer: {tok.get_vocab_size()} tokens from {stats['files']} files "
        f"({stats['chars'] / 1e6:.1f} M chars) -> {path}")


if __name__ == "__main__":
    main()
