"""The upstream docs' request-handling snippets in one app, written as a 0.3.0 user writes them.

handle-request.md (``/chat_stream``), handle-request-intercept.md (``/intercepted``: the body read
first, then handed over; ``/edited`` hands over an edited body) and handle-request-finish-callback.md
(``/with_callback``: the callback reads the session's prompt). fastsession's middleware, as the docs
set it up (``secure=False``: the tests speak plain HTTP). ``COMPAT_LOG`` receives the callbacks.
"""

import json
import os

from fastapi import FastAPI, Request
from fastsession import FastSessionMiddleware, MemoryStore

from chatstream import ChatPromptTogetherRedPajamaINCITEChat as ChatPrompt
from chatstream import ChatStream

chat_stream = ChatStream(
    num_of_concurrent_executions=2,
    max_queue_size=5,
    use_mock_response=True,  # instead of model=..., tokenizer=..., device=...
    mock_params={"type": "echo", "time_per_token_sec": 0.005},
    chat_prompt_clazz=ChatPrompt,
)

app = FastAPI()

app.add_middleware(
    FastSessionMiddleware,
    secret_key="your-session-secret-key",  # Key for cookie signature
    store=MemoryStore(),  # Store for session saving
    http_only=True,  # True: Cookie cannot be accessed from client-side scripts such as JavaScript
    secure=False,  # False: For local development env. True: For production. Requires Https
)


def record(entry):
    with open(os.environ["COMPAT_LOG"], "a") as log:
        log.write(json.dumps(entry) + "\n")


@app.post("/chat_stream")
async def stream_api(request: Request):
    # handling FastAPI/Starlette's Request
    response = await chat_stream.handle_chat_stream_request(request)
    return response


@app.post("/intercepted")
async def intercepted_api(request: Request):
    # When intercepting the Request
    request_body = await request.body()
    data = json.loads(request_body)

    user_input = data["user_input"]
    regenerate = data["regenerate"]

    print(f"user_input:{user_input} regenerate:{regenerate}")

    # If you intercept, specify `request_body`
    response = await chat_stream.handle_chat_stream_request(request, request_body)

    return response


@app.post("/edited")
async def edited_api(request: Request):
    data = json.loads(await request.body())
    data["user_input"] = data["user_input"].upper()
    return await chat_stream.handle_chat_stream_request(request, json.dumps(data))


@app.post("/with_callback")
async def callback_api(request: Request):
    def callback_func(request, message):
        # When text generation is completed
        session_mgr = getattr(request.state, "session", None)
        session = session_mgr.get_session()
        chat_prompt = session.get("chat_prompt")
        record({"message": message, "prompt": chat_prompt.create_prompt(), "pid": os.getpid()})

    response = await chat_stream.handle_chat_stream_request(request, callback=callback_func)

    return response


@app.on_event("startup")
async def startup():
    # start request queueing system
    await chat_stream.start_queue_worker()
