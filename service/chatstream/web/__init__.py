"""Static files of the chat page served at ``/``."""
