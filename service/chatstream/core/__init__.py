"""The chat service: admission, prompt fitting and turn orchestration, below every wire format.

Routes, the OpenAI API, the console and the server all talk to :class:`~chatstream.core.service.
ChatService`; nothing here imports ``api``, ``console``, ``cli``, ``app`` or the ``ChatStream`` facade.
"""
