"""The teacher's rating screen (Textual): preference mode and blind evaluation mode."""
