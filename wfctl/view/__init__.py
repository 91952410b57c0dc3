"""What a person sees during a run: the live Rich table, or plain lines when not a terminal."""
