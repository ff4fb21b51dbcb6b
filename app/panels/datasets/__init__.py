"""The data panel's family editors. Importing this package registers each family's own editor; a family with
none is edited by `SchemaEditor`, generated from its spec model."""
from __future__ import annotations

from . import images, sequences, toy2d  # noqa: F401  (each registers its family's editor)
from .base import EDITORS, FamilyEditor, SchemaEditor, editor_for, qimage, register_editor

__all__ = ["EDITORS", "FamilyEditor", "SchemaEditor", "editor_for", "qimage", "register_editor"]
