"""DL Playground's desktop app: PySide6 + pyqtgraph on top of the Qt-free engine."""
