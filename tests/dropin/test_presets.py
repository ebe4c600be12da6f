"""Every preset renders a two-turn conversation exactly as its model card lays the prompt out.

The expected strings are written out by hand from the model cards (and, for the two base models,
their completion examples), so a change in a preset's format shows up here as a diff.
"""

from __future__ import annotations

import pytest

import chatstream
from chatstream.prompts import (
    AbstractChatPrompt,
    ChatPromptCyberAgentOpenCalm,
    ChatPromptDatabricksDolly,
    ChatPromptLineCorpJpLargeLmInstSft,
    ChatPromptMatsuoLabJpGptNeoxInstSft,
    ChatPromptMetaLlamaLlama2Chat,
    ChatPromptMosaicmlMptChat,
    ChatPromptOpenlmrOpenLlama,
    ChatPromptRinnaJapaneseGPTNeoxInst,
    ChatPromptRinnaJpGptNeoxInstSft,
    ChatPromptStabilityAiJpGptNeoxInstSft,
    ChatPromptStockmarkGptNeoxJp,
    ChatPromptTogetherRedPajamaINCITEChat,
)
from chatstream.prompts.registry import PROMPT_CLASSES, PROMPT_PRESETS, resolve_prompt_class

EN = ("What is the capital of France?", "Paris.", "And of Japan?")
JA = ("日本の首都はどこですか？", "東京です。", "フランスは？")

LLAMA_SYS = chatstream.prompts.presets.LLAMA2_DEFAULT_SYSTEM
STABILITY_SYS = (
    "以下は、タスクを説明する指示と、文脈のある入力の組み合わせです。要求を適切に満たす応答を書きなさい。"
)
WEBLAB_SYS = "以下は、タスクを説明する指示です。要求を適切に満たす応答を書きなさい。"
DOLLY_INTRO = (
    "Below is an instruction that describes a task. "
    "Write a response that appropriately completes the request."
)
MPT_SYS = (
    "A conversation between a user and an LLM-based AI assistant. "
    "The assistant gives helpful and honest answers."
)

CASES = [
    (
        ChatPromptTogetherRedPajamaINCITEChat,
        EN,
        "<human>: What is the capital of France?\n<bot>: Paris.\n<human>: And of Japan?\n<bot>:",
    ),
    (
        ChatPromptMetaLlamaLlama2Chat,
        EN,
        f"<s>[INST] <<SYS>>\n{LLAMA_SYS}\n<</SYS>>\n\nWhat is the capital of France? [/INST] Paris. "
        "</s><s>[INST] And of Japan? [/INST]",
    ),
    (
        ChatPromptDatabricksDolly,
        EN,
        f"{DOLLY_INTRO}\n\n### Instruction:\nWhat is the capital of France?\n\n### Response:\nParis.\n\n"
        "### End\n\n### Instruction:\nAnd of Japan?\n\n### Response:\n",
    ),
    (
        ChatPromptMosaicmlMptChat,
        EN,
        f"<|im_start|>system\n{MPT_SYS}<|im_end|>\n"
        "<|im_start|>user\nWhat is the capital of France?<|im_end|>\n"
        "<|im_start|>assistant\nParis.<|im_end|>\n<|im_start|>user\nAnd of Japan?<|im_end|>\n"
        "<|im_start|>assistant\n",
    ),
    (
        ChatPromptOpenlmrOpenLlama,
        EN,
        "Q: What is the capital of France?\nA: Paris.\nQ: And of Japan?\nA:",
    ),
    (
        ChatPromptRinnaJapaneseGPTNeoxInst,
        JA,
        "ユーザー: 日本の首都はどこですか？<NL>システム: 東京です。<NL>ユーザー: フランスは？<NL>システム: ",
    ),
    (
        ChatPromptLineCorpJpLargeLmInstSft,
        JA,
        "ユーザー: 日本の首都はどこですか？\nシステム: 東京です。\nユーザー: フランスは？\nシステム: ",
    ),
    (
        ChatPromptStabilityAiJpGptNeoxInstSft,
        JA,
        f"{STABILITY_SYS}\n\n### 指示: \n日本の首都はどこですか？\n\n### 応答: 東京です。"
        "\n\n### 指示: \nフランスは？\n\n### 応答: ",
    ),
    # weblab is tuned on single instructions: the preset renders the newest one only
    (ChatPromptMatsuoLabJpGptNeoxInstSft, JA, f"{WEBLAB_SYS}\n\n### 指示:\nフランスは？\n\n### 応答:"),
    (ChatPromptCyberAgentOpenCalm, JA, "日本の首都はどこですか？東京です。フランスは？"),
    (ChatPromptStockmarkGptNeoxJp, JA, "日本の首都はどこですか？東京です。フランスは？"),
]


def two_turns(cls: type[AbstractChatPrompt], texts: tuple[str, str, str]) -> AbstractChatPrompt:
    prompt = cls()
    prompt.add_requester_msg(texts[0])
    prompt.add_responder_msg(texts[1])
    prompt.add_requester_msg(texts[2])
    prompt.add_responder_msg(None)
    return prompt


@pytest.mark.parametrize(("cls", "texts", "expected"), CASES, ids=[c[0].__name__ for c in CASES])
def test_two_turns_render_as_the_model_card_says(cls, texts, expected):
    prompt = two_turns(cls, texts)
    assert prompt.create_prompt() == expected
    assert prompt.get_turn() == 2
    assert prompt.to_messages()[-3:] == [
        {"role": "user", "content": texts[0]},
        {"role": "assistant", "content": texts[1]},
        {"role": "user", "content": texts[2]},
    ]
    # a stored copy renders the same (the SQL store and prompt fitting rebuild prompts this way)
    assert type(prompt).from_dict(prompt.to_dict()).create_prompt() == expected


@pytest.mark.parametrize(("cls", "texts", "expected"), CASES, ids=[c[0].__name__ for c in CASES])
def test_omitting_the_last_reply_leaves_its_tag_open(cls, texts, expected):
    finished = two_turns(cls, texts)
    finished.set_responder_last_msg("Tokyo.")
    assert finished.create_prompt({"omit_last_message": True}) == expected


def test_every_preset_is_in_the_registry_and_the_package():
    classes = {cls for cls, _, _ in CASES}
    assert classes <= set(PROMPT_PRESETS.values())
    for cls in classes:
        assert getattr(chatstream.prompts, cls.__name__) is cls
        assert resolve_prompt_class(cls.__name__) is cls
    assert ChatPromptRinnaJpGptNeoxInstSft is ChatPromptRinnaJapaneseGPTNeoxInst
    assert PROMPT_CLASSES["ChatPromptRinnaJpGptNeoxInstSft"] is ChatPromptRinnaJapaneseGPTNeoxInst
    assert resolve_prompt_class("auto") is None and resolve_prompt_class("") is None
    assert resolve_prompt_class("chatstream.prompts:ChatPromptDatabricksDolly") is ChatPromptDatabricksDolly
    with pytest.raises(ValueError, match="llama2"):
        resolve_prompt_class("no-such-preset")


def test_the_llama2_preset_leaves_out_an_empty_system_block():
    prompt = ChatPromptMetaLlamaLlama2Chat()
    prompt.set_system("")
    prompt.add_requester_msg("  Hi  ")
    prompt.add_responder_msg(None)
    assert prompt.create_prompt() == "<s>[INST] Hi [/INST]"


def test_stability_inputs_are_child_messages():
    prompt = ChatPromptStabilityAiJpGptNeoxInstSft()
    instruction = "VR について、以下の比較対象との違いを箇条書きで教えてください。"
    prompt.add_requester_msg(instruction, child_message="比較対象: AR")
    prompt.add_responder_msg(None)
    assert prompt.create_prompt() == (
        f"{STABILITY_SYS}\n\n### 指示: \nVR について、以下の比較対象との違いを箇条書きで教えてください。"
        "\n\n### 入力: \n比較対象: AR\n\n### 応答: "
    )


def test_chat_mode_off_sends_the_raw_text_and_no_stop_strings():
    for cls, texts, _ in CASES:
        prompt = two_turns(cls, texts)
        prompt.set_chat_mode_enabled(False)
        assert prompt.create_prompt() == prompt.get_requester_last_msg()
        assert not prompt.get_stop_strs()
