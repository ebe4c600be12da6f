"""Editing a conversation in place: the seed's remove/clear/find methods, and dropping old turns.

A mixin of :class:`~chatstream.prompts.base.AbstractChatPrompt`; the message lists it edits are that
class's (``chat_contents`` holds every message, the two side lists share the same objects).
"""

from __future__ import annotations

from .content import ChatContent


class HistoryEditing:
    chat_contents: list[ChatContent]
    responder_messages: list[ChatContent]
    requester_messages: list[ChatContent]

    def clear_history(self) -> None:
        """Forget the conversation but keep the system text and role names."""
        self.chat_contents = []
        self.responder_messages = []
        self.requester_messages = []

    def clear(self) -> None:
        """This package's name for :meth:`clear_history`."""
        self.clear_history()

    def _last_is_responder(self) -> bool:
        return bool(self.chat_contents) and self.chat_contents[-1].is_responder()

    def set_responder_last_msg(self, message: str | None) -> None:
        """Replace the text of the newest reply (the one being generated)."""
        self.responder_messages[-1].set_message(message)

    def set_responder_last_msg_id(self, message_id: str | None) -> None:
        """Name the newest reply, so that feedback or a later request can find it."""
        self.responder_messages[-1].set_message_id(message_id)

    def find_chat_content_by_message_id(self, message_id: str) -> ChatContent | None:
        for content in self.chat_contents:
            if content.get_message_id() is not None and content.get_message_id() == message_id:
                return content
        return None

    def clear_last_responder_message(self) -> None:
        """Blank the newest reply (it is generated again); nothing happens unless a reply is last."""
        if self.responder_messages and self._last_is_responder():
            self.chat_contents[-1].set_message(None)

    def remove_last_responder_message(self) -> None:
        """This package's name for :meth:`clear_last_responder_message` (regenerate)."""
        self.clear_last_responder_message()

    def remove_last_requester_msg(self) -> None:
        """Delete the newest user message; ValueError when a reply comes after it."""
        if not self.chat_contents:
            return
        last = self.chat_contents[-1]
        if last.is_responder():
            raise ValueError("the last message is the responder's: remove it first")
        if last.is_requester() and self.requester_messages:
            self.chat_contents.pop()
            self.requester_messages.pop()

    def remove_last_responder_msg(self) -> None:
        """Delete the newest reply; ValueError when the newest message is not a reply."""
        if not self._last_is_responder():
            raise ValueError("the last message is not the responder's")
        self.chat_contents.pop()
        self.responder_messages.pop()

    def drop_oldest_turn(self) -> bool:
        """Remove the oldest requester/responder exchange; False when only the current turn is left."""
        if len(self.requester_messages) <= 1:
            return False
        first = self.requester_messages.pop(0)
        index = next(i for i, content in enumerate(self.chat_contents) if content is first)
        removed = [first]
        # Everything up to (not including) the next requester message belongs to that turn.
        nxt = index + 1
        while nxt < len(self.chat_contents) and not self.chat_contents[nxt].is_requester():
            removed.append(self.chat_contents[nxt])
            nxt += 1
        self.chat_contents = self.chat_contents[:index] + self.chat_contents[nxt:]
        self.responder_messages = [m for m in self.responder_messages if all(m is not r for r in removed)]
        return True
