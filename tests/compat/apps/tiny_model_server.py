"""web-server-uvicorn-internally.md's full source, with the tiny model in place of RedPajama-3B:
``COMPAT_MODEL`` names its directory, ``COMPAT_PORT`` the port. Plain HTTP, so ``secure=False``."""

import os

import torch
import uvicorn
from fastapi import FastAPI, Request
from fastsession import FastSessionMiddleware, MemoryStore
from transformers import AutoModelForCausalLM, AutoTokenizer

from chatstream import ChatPromptTogetherRedPajamaINCITEChat as ChatPrompt
from chatstream import ChatStream

model_path = os.environ["COMPAT_MODEL"]
device = "cpu"  # "cuda" / "cpu"

tokenizer = AutoTokenizer.from_pretrained(model_path)
model = AutoModelForCausalLM.from_pretrained(model_path, torch_dtype=torch.float32)
model.to(device)

chat_stream = ChatStream(
    num_of_concurrent_executions=2,
    max_queue_size=5,
    model=model,
    tokenizer=tokenizer,
    device=device,
    chat_prompt_clazz=ChatPrompt,
    max_new_tokens=16,
)

app = FastAPI()

app.add_middleware(
    FastSessionMiddleware,
    secret_key="your-session-secret-key",  # Key for cookie signature
    store=MemoryStore(),  # Store for session saving
    http_only=True,  # True: Cookie cannot be accessed from client-side scripts such as JavaScript
    secure=False,  # False: For local development env. True: For production. Requires Https
)


@app.post("/chat_stream")
async def stream_api(request: Request):
    # handling FastAPI/Starlette's Request
    response = await chat_stream.handle_chat_stream_request(request)
    return response


@app.get("/get_prompt")
async def prompt_api(request: Request):
    return await chat_stream.handle_get_prompt_request(request)


@app.on_event("startup")
async def startup():
    # start request queueing system
    await chat_stream.start_queue_worker()


def start_server():
    uvicorn.run(app, host="127.0.0.1", port=int(os.environ["COMPAT_PORT"]))


def main():
    start_server()


if __name__ == "__main__":
    main()
