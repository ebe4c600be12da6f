"""chat-prompt-how-to-impl.md's prompt classes, served as a 0.3.0 user would: the docs' class for
rinna's instruction model at ``/chat_stream``, and one with a system text and the docs' "Titanic"
initial context at ``/titanic/chat_stream``. Mock engine in echo mode (the reply is the user's words).
"""

from fastapi import FastAPI, Request

from chatstream import AbstractChatPrompt, ChatStream


class ChatPromptRinnaJapaneseGPTNeoxInst(AbstractChatPrompt):
    def __init__(self):
        super().__init__()
        self.set_requester("User")  # Specify the role name of the requester for the model
        self.set_responder("System")  # Specify the role name of the person = model that responds

    def get_stop_strs(self):
        return []  # If you want to stop sentence generation when a certain keyword comes in, list it here

    def get_replacement_when_input(self):
        return [("\n", "<NL>")]  # Replacement rule for input text when input

    def get_replacement_when_output(self):
        return [("<NL>", "\n")]  # Replacement rule for output text when output

    def create_prompt(self, opts={}):  # noqa: B006 - the docs' signature
        # build the prompt
        ret = self.system

        # get_contents to get a list of previous conversation history
        for chat_content in self.get_contents(opts):
            # get role name
            chat_content_role = chat_content.get_role()
            # get message
            chat_content_message = chat_content.get_message()

            if chat_content_role:
                if chat_content_message:
                    # if message part exists
                    merged_message = chat_content_role + ": " + chat_content_message + "<NL>"
                else:
                    merged_message = chat_content_role + ": "

                ret += merged_message

        return ret

    def build_initial_prompt(self, chat_prompt):
        # don't implement the initial prompt
        pass


class ChatPromptTitanic(ChatPromptRinnaJapaneseGPTNeoxInst):
    def __init__(self):
        super().__init__()
        self.set_system(
            "The chat system consists of a user and a system. The system tries to answer the user "
            "politely and accurately.<NL>"
        )

    def get_stop_strs(self):
        return ["</s>"]

    def build_initial_prompt(self, chat_prompt):
        chat_prompt.add_requester_msg("Do you know about the Titanic movie?")
        chat_prompt.add_responder_msg("Yes, I am familiar with it.")
        chat_prompt.add_requester_msg("Who starred in the movie?")
        chat_prompt.add_responder_msg("Leonardo DiCaprio and Kate Winslet.")


def make_chat_stream(prompt_class):
    return ChatStream(
        use_mock_response=True,
        mock_params={"type": "echo", "time_per_token_sec": 0.002},
        chat_prompt_clazz=prompt_class,
    )


chat_stream = make_chat_stream(ChatPromptRinnaJapaneseGPTNeoxInst)
titanic = make_chat_stream(ChatPromptTitanic)

app = FastAPI()
chat_stream.append_middlewares(app)
chat_stream.append_apis(
    app,
    {
        "include": ["chat_stream", "get_prompt", "clear_context", "web_ui"],
        "web_ui_params": {"welcomeMessage": "Ask the how-to's model"},
    },
)


@app.post("/titanic/chat_stream")
async def titanic_chat(request: Request):
    return await titanic.handle_chat_stream_request(request)


@app.get("/titanic/get_prompt")
async def titanic_prompt(request: Request):
    return await titanic.handle_get_prompt_request(request)


@app.on_event("startup")
async def startup():
    await chat_stream.start_queue_worker()
    await titanic.start_queue_worker()
