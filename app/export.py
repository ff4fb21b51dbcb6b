"""Export what the window shows: widgets and scenes as PNG or SVG, tables as CSV, text as text. One module,
used by the File menu's Export and by the graph editor."""
from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from pathlib import Path

import pyqtgraph as pg
import pyqtgraph.exporters as pgx
from PySide6.QtCore import QPoint, QRectF, QSize, Qt
from PySide6.QtGui import QImage, QPainter
from PySide6.QtSvg import QSvgGenerator
from PySide6.QtWidgets import QGraphicsScene, QGraphicsView, QWidget

from engine.session import atomic_write


def write_csv(path: Path, rows: Sequence[Sequence[str]]) -> None:
    """Rows as CSV, written atomically."""
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerows(rows)
    data = buf.getvalue().encode()
    atomic_write(path, lambda f: f.write(data))


def write_text(path: Path, text: str) -> None:
    data = text.encode("utf-8")
    atomic_write(path, lambda f: f.write(data))


def export_plot_png(item: pg.PlotItem | QGraphicsScene, path: Path, min_width: int = 800) -> None:
    """A pyqtgraph plot or scene as PNG through pyqtgraph's exporter, at least ``min_width`` pixels wide."""
    exporter = pgx.ImageExporter(item)
    exporter.parameters()["width"] = max(min_width, int(exporter.parameters()["width"]))
    exporter.export(str(path))
    if not path.is_file():
        raise OSError("the PNG exporter wrote nothing")


def export_plots(view: QGraphicsView, fmt: str, path: Path) -> None:
    """The plots of one pyqtgraph view: PNG through pyqtgraph's exporter (sharper), SVG as the widget draws."""
    if fmt == "png":
        export_plot_png(view.scene(), path)
    else:
        export_widget(view, fmt, path)


def export_widget(widget: QWidget, fmt: str, path: Path, title: str = "DL Playground") -> None:
    """A widget as it looks on screen: PNG pixels, or SVG vectors. For plots, SVG goes this way too:
    pyqtgraph 0.14's SVGExporter fails on Qt ≥ 6.9 path data (pyqtgraph#3485), Qt's own SVG generator
    renders the same scene."""
    if fmt == "png":
        if not widget.grab().save(str(path), "PNG"):
            raise OSError("could not write the PNG")
        return
    _svg(path, QSize(widget.width(), widget.height()), title,
         lambda p: widget.render(p) if isinstance(widget, QGraphicsView) else widget.render(p, QPoint(0, 0)))


def export_scene(scene: QGraphicsScene, fmt: str, path: Path, title: str = "DL Playground", margin: float = 20) -> None:
    """Everything in a graphics scene (not only what is scrolled into view), as PNG at 2× or as SVG."""
    rect = scene.itemsBoundingRect().adjusted(-margin, -margin, margin, margin)
    if fmt == "png":
        image = QImage((rect.size() * 2).toSize(), QImage.Format.Format_ARGB32)
        image.fill(Qt.GlobalColor.white)
        painter = QPainter(image)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        scene.render(painter, QRectF(image.rect()), rect)
        painter.end()
        if not image.save(str(path), "PNG"):
            raise OSError("the PNG could not be written")
        return
    _svg(path, QSize(int(rect.width()), int(rect.height())), title,
         lambda p: scene.render(p, QRectF(0, 0, rect.width(), rect.height()), rect))


def _svg(path: Path, size: QSize, title: str, paint: object) -> None:
    gen = QSvgGenerator()
    gen.setFileName(str(path))
    gen.setSize(size)
    gen.setViewBox(QRectF(0, 0, size.width(), size.height()))
    gen.setTitle(title)
    painter = QPainter(gen)
    try:
        paint(painter)  # type: ignore[operator]
    finally:
        painter.end()
    if not path.is_file():
        raise OSError("could not write the SVG")
