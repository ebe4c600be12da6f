"""Every ``handle_*_request`` of ChatStream on a path of the user's choosing, the page and its
script in both of 0.3.0's call forms, ``append_middlewares`` instead of a hand-made session
middleware, and the queue worker run as 0.3.0's coroutine. Started as ``python every_endpoint.py``
(uvicorn inside the script, web-server-uvicorn-internally.md); ``COMPAT_PORT`` names the port and
``COMPAT_LOG`` receives the feedback callbacks.
"""

import asyncio
import contextlib
import json
import os

import uvicorn
from fastapi import FastAPI, Request, Response

from chatstream import ChatPromptTogetherRedPajamaINCITEChat as ChatPrompt
from chatstream import ChatStream

chat_stream = ChatStream(
    use_mock_response=True,
    mock_params={"type": "round", "time_per_token_sec": 0.002},
    chat_prompt_clazz=ChatPrompt,
)
app = FastAPI()
chat_stream.append_middlewares(app, opts={"fast_session": {"secret_key": "an-app-secret-0123456789"}})

UI_INIT_PARAMS = {
    "developMode": True,
    "clearContextOnReload": True,
    "welcomeMessage": "Welcome! Ask me anything <b>now</b>",
    "style_name": "casual_white",
    "style_opts": {"regenerate_enabled": True, "label_input_placeholder": "Type here"},
}


def on_feedback(feedback):
    with open(os.environ["COMPAT_LOG"], "a") as log:
        log.write(json.dumps(feedback) + "\n")


@app.post("/api/chat")
async def chat_api(request: Request):
    return await chat_stream.handle_chat_stream_request(request)


@app.post("/api/clear")
async def clear_api(request: Request):
    return await chat_stream.handle_clear_context_request(request)


@app.get("/api/prompt")
async def prompt_api(request: Request):
    return await chat_stream.handle_get_prompt_request(request)


@app.get("/api/load")
async def load_api(request: Request):
    return await chat_stream.handle_get_load_request(request)


@app.get("/api/resources")
async def resources_api(request: Request):
    return await chat_stream.handle_get_resource_usage_request(request)


@app.post("/api/params")
async def set_params_api(request: Request):
    return await chat_stream.handle_set_generation_params_request(request)


@app.get("/api/params")
async def get_params_api(request: Request):
    return await chat_stream.handle_get_generation_params_request(request)


@app.post("/api/feedback")
async def feedback_api(request: Request):
    return await chat_stream.handle_set_feedback_request(request, {"on_feedback_received": on_feedback})


@app.get("/")
async def index(request: Request, response: Response):
    return await chat_stream.index(request, response, {"ui_init_params": UI_INIT_PARAMS})


@app.get("/page")
async def page(request: Request, response: Response):
    response.headers["X-From-The-Route"] = "kept"
    return await chat_stream.index(response, opts={"ui_init_params": UI_INIT_PARAMS})


@app.get("/chatstream.js")
async def script(request: Request, response: Response):
    return await chat_stream.js(response)


@app.get("/app.js")
async def script_with_request(request: Request, response: Response):
    return await chat_stream.js(request, response)


@app.on_event("startup")
async def startup():
    app.state.worker = asyncio.create_task(chat_stream.queue_worker())


@app.on_event("shutdown")
async def shutdown():
    app.state.worker.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await app.state.worker


if __name__ == "__main__":
    uvicorn.run(app, host="127.0.0.1", port=int(os.environ["COMPAT_PORT"]))
