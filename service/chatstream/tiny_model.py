"""A small random-weight Llama model with a locally trained tokenizer, for tests and benchmarks.

Nothing is downloaded: the tokenizer is a byte-level BPE trained with the ``tokenizers`` library on a
built-in English/Japanese corpus (byte-level so any Unicode round-trips and Japanese characters are
split across tokens, which exercises incremental detokenisation), and both parts are written with
``save_pretrained`` so they load through the ordinary ``from_pretrained`` path.
"""

from __future__ import annotations

from pathlib import Path

CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "<|{{ message['role'] }}|>\n{{ message['content'] }}{{ eos_token }}\n"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>\n{% endif %}"
)

SPECIAL_TOKENS = ["<unk>", "<s>", "</s>", "<pad>", "<|system|>", "<|user|>", "<|assistant|>"]

_CORPUS_EN = """
The quick brown fox jumps over the lazy dog. A streaming chat server sends every token as soon as
the model produces it. Users wait in a bounded queue and the server refuses work it cannot finish.
Conversations are stored in a database so that any replica can continue them after a restart.
Operators scale the number of pods on the queue depth and watch the time to the first token.
Hello, how are you today? I am fine, thank you. What would you like to talk about? Tell me a story
about a small robot who learned to paint the sea at night, and about the lighthouse keeper who
taught it patience. Numbers: 0 1 2 3 4 5 6 7 8 9 10 100 1000. Punctuation: , . ; : ! ? ( ) [ ] { }
"""
_CORPUS_JA = """
こんにちは。今日はいい天気ですね。日本語の文章を一文字ずつ表示します。
事前学習済みの言語モデルで文章を生成し、ストリーミングで返します。
東京、大阪、京都、北海道、沖縄。ありがとうございます。よろしくお願いします。
"""


def corpus() -> list[str]:
    """The tokenizer's training text (English and Japanese); the engine benchmark takes prompts from it."""
    lines = [line.strip() for line in (_CORPUS_EN + _CORPUS_JA).splitlines() if line.strip()]
    # Vary the text so BPE finds enough merges for larger vocabularies.
    words = " ".join(lines).split()
    extra = [" ".join(words[i : i + 12]) for i in range(0, len(words), 5)]
    numbered = [f"item {i} value {i * 7 % 1013} code x{i:04x}" for i in range(3000)]
    return lines * 20 + extra * 5 + numbered


def train_tokenizer(vocab_size: int):
    """A byte-level BPE ``PreTrainedTokenizerFast`` with chat template and special tokens."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tokenizer = Tokenizer(models.BPE(unk_token="<unk>"))
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(corpus(), trainer=trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        unk_token="<unk>",
        bos_token="<s>",
        eos_token="</s>",
        pad_token="<pad>",
        additional_special_tokens=SPECIAL_TOKENS[4:],
    )
    fast.chat_template = CHAT_TEMPLATE
    return fast


def make_tiny_model(
    out_dir: str | Path,
    *,
    hidden_size: int = 64,
    num_layers: int = 2,
    num_heads: int = 4,
    intermediate_size: int = 128,
    vocab_size: int = 2000,
    max_position_embeddings: int = 2048,
    seed: int = 0,
) -> Path:
    """Write a random-weight ``LlamaForCausalLM`` and its tokenizer to ``out_dir``.

    The embedding has ``vocab_size`` rows even when the trained BPE vocabulary ends smaller (the
    corpus is small), so every token id the tokenizer produces is in range.
    """
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tokenizer = train_tokenizer(vocab_size)
    rows = max(vocab_size, len(tokenizer))
    config = LlamaConfig(
        vocab_size=rows,
        hidden_size=hidden_size,
        intermediate_size=intermediate_size,
        num_hidden_layers=num_layers,
        num_attention_heads=num_heads,
        num_key_value_heads=num_heads,
        max_position_embeddings=max_position_embeddings,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=False,
    )
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config)
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out
