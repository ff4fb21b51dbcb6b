"""The network graph editor: palette, canvas, inspector and summary over an undoable draft of the model graph."""
