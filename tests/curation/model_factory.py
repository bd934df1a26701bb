"""Tiny, randomly initialised Hugging Face checkpoints built in the test (no hub): a VisionEncoderDecoder
captioner (tiny ViT + tiny GPT-2, byte-level BPE tokenizer trained here) and a tiny GPT-2 for fusion."""
from __future__ import annotations

from pathlib import Path

CORPUS = ["a red square on a table", "a blue circle in the grass", "the cat sits on the mat", "rot blau grün"] * 20


def tokenizer():
    """A byte-level BPE PreTrainedTokenizerFast trained on CORPUS (any text encodes)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=320, special_tokens=["<unk>", "<s>", "</s>", "<pad>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(CORPUS, trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>", pad_token="<pad>",
                                   unk_token="<unk>")


def tiny_captioner(out: Path, seed: int = 0, hidden: int = 32, layers: int = 1, image_size: int = 32, heads: int = 2,
                   patch: int = 8, ffn: int = 64) -> Path:
    """VisionEncoderDecoderModel (ViT + GPT-2) + ViTImageProcessor + tokenizer, saved to `out` (larger
    sizes give real-size, still randomly initialised, models for benchmarks)."""
    import torch
    from transformers import (
        GPT2Config,
        VisionEncoderDecoderConfig,
        VisionEncoderDecoderModel,
        ViTConfig,
        ViTImageProcessor,
    )

    tok = tokenizer()
    enc = ViTConfig(hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=heads, intermediate_size=ffn,
                    image_size=image_size, patch_size=patch)
    dec = GPT2Config(n_embd=hidden, n_layer=layers, n_head=heads, n_inner=ffn, vocab_size=len(tok), n_positions=128,
                     bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)
    cfg = VisionEncoderDecoderConfig.from_encoder_decoder_configs(enc, dec)
    cfg.decoder_start_token_id, cfg.pad_token_id = tok.bos_token_id, tok.pad_token_id
    cfg.eos_token_id = tok.eos_token_id
    torch.manual_seed(seed)
    VisionEncoderDecoderModel(cfg).save_pretrained(out)
    tok.save_pretrained(out)
    ViTImageProcessor(size={"height": image_size, "width": image_size}).save_pretrained(out)
    return out


def tiny_lm(out: Path, seed: int = 0) -> Path:
    """A tiny GPT-2 causal LM + tokenizer, saved to `out`."""
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    tok = tokenizer()
    torch.manual_seed(seed)
    GPT2LMHeadModel(GPT2Config(n_embd=32, n_layer=1, n_head=2, vocab_size=len(tok), n_positions=512,
                               bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
                               pad_token_id=tok.pad_token_id)).save_pretrained(out)
    tok.save_pretrained(out)
    return out


def tiny_blip(out: Path, seed: int = 0) -> Path:
    """A tiny BlipForConditionalGeneration + BlipProcessor (BERT word-piece tokenizer), saved to `out`."""
    import torch
    from transformers import (
        BertTokenizerFast,
        BlipConfig,
        BlipForConditionalGeneration,
        BlipImageProcessor,
        BlipProcessor,
    )

    out.mkdir(parents=True, exist_ok=True)
    words = sorted({w for line in CORPUS for w in line.split()} | {"photo", "of"})
    vocab = {w: i for i, w in enumerate(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *words])}
    tok = BertTokenizerFast(vocab=vocab)
    layer = {"hidden_size": 32, "num_hidden_layers": 1, "num_attention_heads": 2, "intermediate_size": 64}
    cfg = BlipConfig(text_config={**layer, "vocab_size": len(tok), "max_position_embeddings": 64, "bos_token_id": 2,
                                  "sep_token_id": 3, "eos_token_id": 3, "pad_token_id": 0, "encoder_hidden_size": 32},
                     vision_config={**layer, "image_size": 32, "patch_size": 8}, projection_dim=16)
    torch.manual_seed(seed)
    BlipForConditionalGeneration(cfg).save_pretrained(out)
    processor = BlipProcessor(image_processor=BlipImageProcessor(size={"height": 32, "width": 32}), tokenizer=tok)
    processor.save_pretrained(out)
    return out
