"""Console chat: the seed's ``handle_console_input`` (:mod:`.local`) and ``chatstream chat``
(:mod:`.terminal`, with its backends in :mod:`.backends`)."""
