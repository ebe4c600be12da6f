"""The seed README's quick-start server, unchanged except that the model lines became the mock.

Run by the tests with uvicorn; ``CALLBACK_LOG`` names a file that receives every finish callback.
"""

import os

from fastapi import FastAPI, Request
from fastsession import FastSessionMiddleware, MemoryStore

from chatstream import ChatPromptTogetherRedPajamaINCITEChat as ChatPrompt
from chatstream import ChatStream

chat_stream = ChatStream(
    num_of_concurrent_executions=int(os.environ.get("QS_N", "2")),
    max_queue_size=int(os.environ.get("QS_M", "5")),
    use_mock_response=True,
    mock_params={
        "type": os.environ.get("QS_MOCK", "round"),
        "time_per_token_sec": float(os.environ.get("QS_PACE", "0.01")),
    },
    chat_prompt_clazz=ChatPrompt,
    too_many_request_as_http_error=os.environ.get("QS_429") == "1",
)

app = FastAPI()

app.add_middleware(
    FastSessionMiddleware,
    secret_key="your-session-secret-key",
    store=MemoryStore(),
    http_only=True,
    secure=False,
)


async def record(request, message):
    path = os.environ.get("CALLBACK_LOG")
    if path:
        with open(path, "a") as log:  # noqa: ASYNC230 - a few bytes, test-only
            log.write(message + "\n")


@app.post("/chat_stream")
async def stream_api(request: Request):
    return await chat_stream.handle_starlette_request(request, callback=record)


@app.get("/get_load")
async def get_load():
    return chat_stream.get_load()


@app.on_event("startup")
async def startup():
    await chat_stream.start_queue_worker()
