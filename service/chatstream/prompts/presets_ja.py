"""The seed's prompt presets for Japanese models, each in the format its model card documents."""

from __future__ import annotations

from .content import ChatContent, PromptTTL
from .formatted import PlainTextPrompt, RoleColonPrompt, SectionPrompt

__all__ = [
    "ChatPromptCyberAgentOpenCalm",
    "ChatPromptLineCorpJpLargeLmInstSft",
    "ChatPromptMatsuoLabJpGptNeoxInstSft",
    "ChatPromptRinnaJapaneseGPTNeoxInst",
    "ChatPromptRinnaJpGptNeoxInstSft",
    "ChatPromptStabilityAiJpGptNeoxInstSft",
    "ChatPromptStockmarkGptNeoxJp",
]

STABILITY_SYSTEM = (
    "以下は、タスクを説明する指示と、文脈のある入力の組み合わせです。要求を適切に満たす応答を書きなさい。"
)
MATSUO_SYSTEM = "以下は、タスクを説明する指示です。要求を適切に満たす応答を書きなさい。"


class ChatPromptRinnaJapaneseGPTNeoxInst(RoleColonPrompt):
    """rinna/japanese-gpt-neox-3.6b-instruction-sft: ``ユーザー: ...<NL>システム: ``."""

    separator = "<NL>"
    open_turn_suffix = ": "

    def __init__(self) -> None:
        super().__init__()
        self.set_requester("ユーザー")
        self.set_responder("システム")

    def get_stop_strs(self) -> list[str] | None:
        if not self.chat_mode:
            return None
        return []

    def get_replacement_when_input(self) -> list[tuple[str, str]] | None:
        return [("\n", "<NL>")]

    def get_replacement_when_output(self) -> list[tuple[str, str]] | None:
        return [("<NL>", "\n")]


#: ChatStream 0.3.0's name for the same preset
ChatPromptRinnaJpGptNeoxInstSft = ChatPromptRinnaJapaneseGPTNeoxInst


class ChatPromptLineCorpJpLargeLmInstSft(RoleColonPrompt):
    """line-corporation/japanese-large-lm-1.7b/3.6b-instruction-sft: ``ユーザー: ...\\nシステム: ``."""

    open_turn_suffix = ": "

    def __init__(self) -> None:
        super().__init__()
        self.set_requester("ユーザー")
        self.set_responder("システム")
        self.set_prefix_as_stop_str_enabled(True)

    def get_stop_strs(self) -> list[str] | None:
        if not self.chat_mode:
            return None
        return ["\nユーザー:"]


class _AlpacaJaPrompt(SectionPrompt):
    """Alpaca-style Japanese instructions: system text, ``### 指示`` / ``### 入力`` / ``### 応答``.

    ``tag_end`` is what follows each ``### name:`` tag before the text; an open reply ends with
    ``open_end``. Child messages of an instruction are its ``### 入力`` sections.
    """

    tag_end = "\n"
    open_end = ""
    reply_end = "\n"

    def __init__(self, system: str) -> None:
        super().__init__()
        self.set_system(system)
        self.set_requester("指示")
        self.set_responder("応答")
        self.set_prefix_as_stop_str_enabled(True)

    def get_stop_strs(self) -> list[str] | None:
        if not self.chat_mode:
            return None
        # the newline form first: at the same token it is the earlier match, so the reply keeps no
        # trailing blank lines
        return ["\n\n### 指示:", "### 指示:"]

    def render_content(self, content: ChatContent) -> str:
        if not content.message:
            return f"\n\n### {content.role}:{self.open_end}"
        if content.is_responder():
            return f"\n\n### {content.role}:{self.reply_end}{content.message}"
        children = content.get_child_messages() or []
        inputs = "".join(f"\n\n### 入力:{self.tag_end}{child}" for child in children)
        return f"\n\n### {content.role}:{self.tag_end}{content.message}{inputs}"


class ChatPromptStabilityAiJpGptNeoxInstSft(_AlpacaJaPrompt):
    """stabilityai/japanese-stablelm-instruct-alpha-7b: the card's ``build_prompt`` (``: \\n`` tags)."""

    tag_end = " \n"
    open_end = " "
    reply_end = " "

    def __init__(self) -> None:
        super().__init__(STABILITY_SYSTEM)


class ChatPromptMatsuoLabJpGptNeoxInstSft(_AlpacaJaPrompt):
    """matsuo-lab/weblab-10b-instruction-sft: one instruction per prompt, as the model was tuned."""

    def __init__(self) -> None:
        super().__init__(MATSUO_SYSTEM)
        self.set_prompt_ttl(PromptTTL.SINGLE_TURN)

    def get_stop_strs(self) -> list[str] | None:
        if not self.chat_mode:
            return None
        # "Q:" is the seed's: the model sometimes goes on with made-up question/answer pairs.
        return ["\n\n### 指示:", "### 指示:", "Q:"]


class ChatPromptCyberAgentOpenCalm(PlainTextPrompt):
    """cyberagent/open-calm-small … 7b (base models): the text is continued, as in the card's example."""


class ChatPromptStockmarkGptNeoxJp(PlainTextPrompt):
    """stockmark/gpt-neox-japanese-1.4b (a base model): the text is continued, as in the card's example."""
