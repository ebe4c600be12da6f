"""One message of a conversation, and the two enums the seed's prompt API names.

A message carries its role *type* as well as its role name: several model families (Llama 2,
OpenCALM, Stockmark) render no role names at all, so both sides have the name ``""`` and only the
type tells a question from an answer.
"""

from __future__ import annotations

from enum import Enum, auto
from typing import Any


class RoleType(Enum):
    """Which side of the conversation a message comes from."""

    REQUESTER = auto()
    RESPONDER = auto()
    UNKNOWN = auto()


class PromptTTL(Enum):
    """How much history a prompt renders: every turn, or only the newest exchange."""

    MULTI_TURN = auto()
    SINGLE_TURN = auto()


class ChatContent:
    """A role name, its text (``None`` while the reply is being generated) and optional extras.

    ``message_id`` names a stored reply (feedback, regenerate); ``child_messages`` are inputs that
    belong to an instruction (the "入力" section of Alpaca-style Japanese prompts).
    """

    def __init__(
        self,
        role: str,
        msg: str | None = "",
        msg_id: str | None = None,
        role_type: RoleType = RoleType.UNKNOWN,
        child_msgs: list[str] | None = None,
    ) -> None:
        self.role = role
        self.role_type = role_type
        self.message = msg
        self.message_id = msg_id
        self.child_messages = child_msgs

    def get_role(self) -> str:
        return self.role

    def get_role_type(self) -> RoleType:
        return self.role_type

    def get_message(self) -> str | None:
        return self.message

    def set_message(self, msg: str | None) -> None:
        self.message = msg

    def get_message_id(self) -> str | None:
        return self.message_id

    def set_message_id(self, message_id: str | None) -> None:
        self.message_id = message_id

    def add_child_message(self, msg: str) -> None:
        if self.child_messages is None:
            self.child_messages = []
        self.child_messages.append(msg)

    def get_child_messages(self) -> list[str] | None:
        return self.child_messages

    def has_child_messages(self) -> bool:
        return bool(self.child_messages)

    def is_requester(self) -> bool:
        return self.role_type is RoleType.REQUESTER

    def is_responder(self) -> bool:
        return self.role_type is RoleType.RESPONDER

    def to_dict(self) -> dict[str, Any]:
        return {
            "role": self.role,
            "role_type": self.role_type.name,
            "message": self.message,
            "message_id": self.message_id,
            "child_messages": self.child_messages,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ChatContent:
        """Accepts this class's dicts, the seed's (same keys) and older ones with only role/message."""
        role_type = data.get("role_type")
        return cls(
            role=data["role"],
            msg=data.get("message"),
            msg_id=data.get("message_id"),
            role_type=RoleType[role_type] if role_type else RoleType.UNKNOWN,
            child_msgs=data.get("child_messages"),
        )

    def copy_open(self) -> ChatContent:
        """The same role with no text: an open turn for the model to write."""
        return ChatContent(self.role, None, role_type=self.role_type)

    def __repr__(self) -> str:
        kind = self.role_type.name.lower()
        return f"ChatContent(role={self.role!r}, {kind}, message={self.message!r})"
