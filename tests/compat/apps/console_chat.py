"""console-chat.md's script with the tiny model (``COMPAT_MODEL``) in place of RedPajama-3B.

0.3.0's script also imports ``LoadTime`` (the progress bar of load-model-with-pbar.md), which it
does not use; that name is tested with the rest of the package's names.
"""

import asyncio
import os

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from chatstream import ChatPromptTogetherRedPajamaINCITEChat as ChatPrompt
from chatstream import ChatStream

model_path = os.environ["COMPAT_MODEL"]

device = "cpu"  # "cuda" / "cpu"

model = AutoModelForCausalLM.from_pretrained(model_path, torch_dtype=torch.float32)

tokenizer = AutoTokenizer.from_pretrained(model_path)

if device == "cuda":
    model.to(device)

chat_stream = ChatStream(
    model=model,
    tokenizer=tokenizer,
    device=device,
    chat_prompt_clazz=ChatPrompt,
    max_new_tokens=12,
)


async def console_chat_main():
    while True:
        user_input = input("YOU: ")  # noqa: ASYNC250 - the docs' script, as written
        if user_input.lower() == "exit":
            break

        async for response_text, updated_text, pos in chat_stream.handle_console_input(user_input):  # noqa: B007
            if pos == "begin":
                print("AI : ", end="", flush=True)
                print(updated_text, end="", flush=True)

            elif pos == "mid":
                print(updated_text, end="", flush=True)

            elif pos == "end":
                print()


if __name__ == "__main__":
    asyncio.run(console_chat_main())
