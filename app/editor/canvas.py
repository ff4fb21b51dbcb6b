"""The graph editor's canvas: blocks with ports, wires labelled with tensor shapes, drag-to-wire, zoom and pan."""
from __future__ import annotations

from typing import Any

from PySide6.QtCore import QLineF, QPointF, QRectF, QSize, Qt, Signal
from PySide6.QtGui import (
    QColor,
    QDragEnterEvent,
    QDragMoveEvent,
    QDropEvent,
    QFont,
    QKeyEvent,
    QMouseEvent,
    QPainter,
    QPainterPath,
    QPen,
    QTransform,
    QWheelEvent,
)
from PySide6.QtWidgets import (
    QGraphicsItem,
    QGraphicsObject,
    QGraphicsPathItem,
    QGraphicsRectItem,
    QGraphicsScene,
    QGraphicsSceneMouseEvent,
    QGraphicsSimpleTextItem,
    QGraphicsView,
    QStyle,
    QStyleOptionGraphicsItem,
    QWidget,
)

from engine.ops import OPS, fmt_shape

from .document import EditorDocument

MIME_OP = "application/x-dlp-op"
BLOCK_W = 156.0
PORT_R = 6.0
ERROR = QColor("#c62828")
UNKNOWN = "#eeeeee"  # the fill of a block whose op is not registered (it shows as an error to delete)
# Zoom limits. Fit zooms out as far as a graph needs, down to MIN_ZOOM, where a block is a few pixels wide (a
# chain of about 70 blocks in the default window's canvas); it never magnifies past FIT_MAX.
MIN_ZOOM, MAX_ZOOM, FIT_MAX = 0.02, 4.0, 1.2
FIT_MARGIN = 16  # pixels of canvas left around the graph by Fit


def key_params(op: str, params: dict[str, Any]) -> str:
    """The parameters the op says are worth reading on the block itself (the inspector shows them all)."""
    spec = OPS.get(op)
    if spec is None:
        return ""
    defaults = spec.params().model_dump()
    parts = []
    for k in spec.key_params:
        v = params.get(k, defaults.get(k))
        if v is None or v is False:
            continue
        v = "×".join(str(x) for x in v) if isinstance(v, (list, tuple)) else v
        parts.append(f"{k} {v}" if not isinstance(v, str) else v)
    return ", ".join(str(p) for p in parts)


def training_text(node: dict[str, Any]) -> str:
    """How a block learns when it is not as usual: frozen, at a multiple of the rate, from trained weights."""
    parts = []
    if node.get("frozen"):
        parts.append("frozen")
    elif node.get("lr_mult", 1.0) != 1.0:
        parts.append(f"lr ×{node['lr_mult']:g}")
    if node.get("pretrained"):
        parts.append("pretrained")  # which network: the tooltip and the inspector say (the block is narrow)
    return " · ".join(parts)


class Port(QGraphicsObject):
    """An input (left) or output (right) connector of a block."""

    def __init__(self, block: Block, output: bool, index: int, name: str) -> None:
        super().__init__(block)
        self.block, self.output, self.index, self.name = block, output, index, name
        self.setAcceptHoverEvents(True)
        self.setCursor(Qt.CursorShape.CrossCursor)
        role = f" '{name}'" if name and name != "in" else ""
        self.setToolTip(f"Drag from here to an input port to wire {block.node_id}" if output
                        else f"Input{role} of {block.node_id}: drop a wire from another block's output here")
        self.hot = False

    def boundingRect(self) -> QRectF:
        return QRectF(-PORT_R - 2, -PORT_R - 2, 2 * PORT_R + 4, 2 * PORT_R + 4)

    def paint(self, painter: QPainter, option: QStyleOptionGraphicsItem, widget: QWidget | None = None) -> None:
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.setPen(QPen(QColor("#37474f"), 1.5))
        painter.setBrush(QColor("#ffb300") if self.hot else QColor("#ffffff"))
        painter.drawEllipse(QPointF(0, 0), PORT_R, PORT_R)

    def hoverEnterEvent(self, event: Any) -> None:
        self.hot = True
        self.update()

    def hoverLeaveEvent(self, event: Any) -> None:
        self.hot = False
        self.update()

    def centre(self) -> QPointF:
        return self.scenePos()


class Block(QGraphicsObject):
    """One node: op, id, key parameters, output shape and parameter count; red with the error when invalid."""

    def __init__(self, node: dict[str, Any], shape: tuple[int, ...] | None, count: int | None,
                 error: str | None) -> None:
        super().__init__()
        self.node_id, self.op = node["id"], node["op"]
        spec = OPS.get(self.op)
        self.colour = QColor(spec.colour if spec else UNKNOWN)
        self.error = error
        self.lines = [f"{self.op}  ·  {self.node_id}" if self.op != self.node_id else self.op]
        kp = key_params(self.op, node.get("params", {}))
        if kp:
            self.lines.append(kp)
        self.lines.append("→ " + (fmt_shape(shape) if shape is not None else "?"))
        if count:
            self.lines.append(f"{count:,} parameters")
        if learning := training_text(node):
            self.lines.append(learning)
        names = spec.port_names() if spec else ("in",)
        self.height = max(22.0 + 16.0 * len(self.lines), 28.0 * len(names) + 12)
        self.in_ports = [Port(self, False, i, n) for i, n in enumerate(names)]
        for i, p in enumerate(self.in_ports):
            p.setPos(0, self.height * (i + 1) / (len(names) + 1))
        self.out_port = Port(self, True, 0, "out") if self.op != "output" else None
        if self.out_port is not None:
            self.out_port.setPos(BLOCK_W, self.height / 2)
        self.wires: list[Wire] = []
        self.setFlags(QGraphicsItem.GraphicsItemFlag.ItemIsMovable | QGraphicsItem.GraphicsItemFlag.ItemIsSelectable
                      | QGraphicsItem.GraphicsItemFlag.ItemSendsGeometryChanges)
        pos = node.get("position") or (0.0, 0.0)
        self.setPos(float(pos[0]), float(pos[1]))
        doc = spec.doc if spec else "unknown op"
        start = f"\n\nStarts from {node['pretrained']}'s trained {self.node_id}." if node.get("pretrained") else ""
        self.setToolTip(f"{self.node_id} ({self.op}): {doc}{start}" + (f"\n\n⚠ {error}" if error else ""))

    def boundingRect(self) -> QRectF:
        return QRectF(-2, -2, BLOCK_W + 4, self.height + 4)

    def paint(self, painter: QPainter, option: QStyleOptionGraphicsItem, widget: QWidget | None = None) -> None:
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        rect = QRectF(0, 0, BLOCK_W, self.height)
        fill = QColor("#fdecea") if self.error else self.colour
        edge = ERROR if self.error else QColor("#1565c0") if self.isSelected() else QColor("#78909c")
        painter.setPen(QPen(edge, 3 if self.isSelected() or self.error else 1.2))
        painter.setBrush(fill)
        painter.drawRoundedRect(rect, 6, 6)
        painter.setPen(QColor("#7a1712") if self.error else QColor("#263238"))
        font = QFont(painter.font())
        font.setPointSizeF(8.5)
        for i, line in enumerate(self.lines):
            font.setBold(i == 0)
            painter.setFont(font)
            text_rect = QRectF(10, 8 + 16 * i, BLOCK_W - 20, 16)
            painter.drawText(text_rect, Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter,
                             painter.fontMetrics().elidedText(line, Qt.TextElideMode.ElideRight, int(BLOCK_W - 20)))
        if self.error:
            font.setBold(True)
            painter.setFont(font)
            painter.drawText(QRectF(BLOCK_W - 22, 4, 18, 16), Qt.AlignmentFlag.AlignCenter, "⚠")
        if len(self.in_ports) > 1 and OPS.get(self.op) and OPS[self.op].ports:
            font.setBold(False)
            font.setPointSizeF(7)
            painter.setFont(font)
            painter.setPen(QColor("#546e7a"))
            for p in self.in_ports:
                painter.drawText(QRectF(-70, p.y() - 18, 64, 12), Qt.AlignmentFlag.AlignRight, p.name)

    def itemChange(self, change: QGraphicsItem.GraphicsItemChange, value: Any) -> Any:
        if change == QGraphicsItem.GraphicsItemChange.ItemPositionHasChanged:
            for w in self.wires:
                w.route()
        return super().itemChange(change, value)


class Wire(QGraphicsPathItem):
    """A connection from a block's output to an input port, labelled with the tensor shape it carries."""

    def __init__(self, src: Block, dst: Block, port: int, shape: tuple[int, ...] | None) -> None:
        super().__init__()
        self.src, self.dst, self.port = src, dst, port
        self.setZValue(-1)
        self.setFlag(QGraphicsItem.GraphicsItemFlag.ItemIsSelectable)
        self.setPen(QPen(QColor("#546e7a"), 2))
        self.backdrop = QGraphicsRectItem(self)  # keeps the shape readable where it crosses other wires
        self.backdrop.setBrush(QColor(250, 250, 250, 220))
        self.backdrop.setPen(QPen(Qt.PenStyle.NoPen))
        self.label = QGraphicsSimpleTextItem(fmt_shape(shape) if shape is not None else "?", self)
        self.label.setBrush(QColor("#37474f"))
        font = self.label.font()
        font.setPointSizeF(7.5)
        self.label.setFont(font)
        self.setToolTip(f"{src.node_id} → {dst.node_id}: {self.label.text()}")
        src.wires.append(self)
        dst.wires.append(self)
        self.route()

    def route(self) -> None:
        a = self.src.out_port.centre() if self.src.out_port else self.src.scenePos()
        ports = self.dst.in_ports
        b = ports[min(self.port, len(ports) - 1)].centre() if ports else self.dst.scenePos()
        dx = max(40.0, abs(b.x() - a.x()) / 2)
        path = QPainterPath(a)
        path.cubicTo(a + QPointF(dx, 0), b - QPointF(dx, 0), b)
        self.setPath(path)
        mid = path.pointAtPercent(0.5)
        r = self.label.boundingRect()
        self.label.setPos(mid.x() - r.width() / 2, mid.y() - r.height() / 2)
        self.backdrop.setRect(self.label.mapRectToParent(r).adjusted(-2, 0, 2, 0))

    def key(self) -> tuple[str, str]:
        return (self.src.node_id, self.dst.node_id)

    def itemChange(self, change: QGraphicsItem.GraphicsItemChange, value: Any) -> Any:
        if change == QGraphicsItem.GraphicsItemChange.ItemSelectedHasChanged:
            self.setPen(QPen(QColor("#1565c0"), 3) if value else QPen(QColor("#546e7a"), 2))
        return super().itemChange(change, value)


class EditorScene(QGraphicsScene):
    """Builds blocks and wires from the document; turns drags into wiring and moves into undoable edits."""

    node_selected = Signal(str)  # the one selected block's id, or "" for none or many

    def __init__(self, doc: EditorDocument, parent: Any = None) -> None:
        super().__init__(parent)
        self.doc = doc
        self.blocks: dict[str, Block] = {}
        self.wires: list[Wire] = []
        self._drag_from: Port | None = None
        self._drag_line: QGraphicsPathItem | None = None
        self._press_pos: dict[str, QPointF] = {}
        self.setBackgroundBrush(QColor("#fafafa"))
        doc.changed.connect(self.rebuild)
        self.selectionChanged.connect(self._on_selection)
        self.rebuild()

    def rebuild(self) -> None:
        selected = {b.node_id for b in self.blocks.values() if b.isSelected()}
        self.blockSignals(True)
        self.clear()
        self.blocks, self.wires = {}, []
        diag = self.doc.diagnosis
        counts = diag.counts
        for node in self.doc.as_dict()["nodes"]:
            b = Block(node, diag.shapes.get(node["id"]), counts.get(node["id"]), diag.errors.get(node["id"]))
            self.addItem(b)
            self.blocks[node["id"]] = b
        for dst in self.blocks:
            for port, src in enumerate(self.doc.slots(dst)):
                if src is not None and src in self.blocks:
                    w = Wire(self.blocks[src], self.blocks[dst], port, diag.shapes.get(src))
                    self.addItem(w)
                    self.wires.append(w)
        for n in selected & set(self.blocks):
            self.blocks[n].setSelected(True)
        self.blockSignals(False)
        # Grow the scene, never shrink it: a view whose scroll range shrank would jump under the user's hand.
        self.setSceneRect(self.sceneRect().united(self.itemsBoundingRect().adjusted(-400, -300, 400, 300)))
        self._on_selection()

    def _on_selection(self) -> None:
        picked = [b for b in self.blocks.values() if b.isSelected()]
        self.node_selected.emit(picked[0].node_id if len(picked) == 1 else "")

    def selected_nodes(self) -> set[str]:
        return {b.node_id for b in self.blocks.values() if b.isSelected()}

    def selected_wires(self) -> set[tuple[str, str]]:
        return {w.key() for w in self.wires if w.isSelected()}

    # --- wiring and moving -----------------------------------------------------------------------

    def _port_at(self, pos: QPointF) -> Port | None:
        """The port nearest to pos among those under it (blocks placed edge to edge have touching ports)."""
        ports = [i for i in self.items(pos) if isinstance(i, Port)]
        return min(ports, key=lambda p: QLineF(p.centre(), pos).length(), default=None)

    def mousePressEvent(self, event: QGraphicsSceneMouseEvent) -> None:
        port = self._port_at(event.scenePos()) if event.button() == Qt.MouseButton.LeftButton else None
        if port is not None:
            self._drag_from = port
            self._drag_line = QGraphicsPathItem()
            self._drag_line.setPen(QPen(QColor("#ff8f00"), 2, Qt.PenStyle.DashLine))
            self.addItem(self._drag_line)
            event.accept()
            return
        super().mousePressEvent(event)
        self._press_pos = {b.node_id: b.pos() for b in self.blocks.values() if b.isSelected()}

    def _nearest_port(self, pos: QPointF, output: bool) -> Port | None:
        """A wire dropped on a block's body goes to its nearest port of the wanted kind (an empty input first)."""
        block = next((i for i in self.items(pos) if isinstance(i, Block)), None)
        if block is None:
            return None
        if output:
            return block.out_port
        if not block.in_ports:
            return None
        slots = self.doc.slots(block.node_id)
        empty = [p for p in block.in_ports if p.index >= len(slots) or slots[p.index] is None]
        return min(empty or block.in_ports, key=lambda p: QLineF(p.centre(), pos).length())

    def mouseMoveEvent(self, event: QGraphicsSceneMouseEvent) -> None:
        if self._drag_from is not None and self._drag_line is not None:
            path = QPainterPath(self._drag_from.centre())
            path.lineTo(event.scenePos())
            self._drag_line.setPath(path)
            return
        super().mouseMoveEvent(event)

    def mouseReleaseEvent(self, event: QGraphicsSceneMouseEvent) -> None:
        if self._drag_from is not None:
            start, self._drag_from = self._drag_from, None
            if self._drag_line is not None:
                self.removeItem(self._drag_line)
                self._drag_line = None
            end = self._port_at(event.scenePos()) or self._nearest_port(event.scenePos(), not start.output)
            if end is not None and end.output != start.output:
                out, inp = (start, end) if start.output else (end, start)
                self.doc.connect(out.block.node_id, inp.block.node_id, inp.index)
            return
        super().mouseReleaseEvent(event)
        moved = {n: (b.pos().x(), b.pos().y()) for n, b in self.blocks.items()
                 if n in self._press_pos and b.pos() != self._press_pos[n]}
        self._press_pos = {}
        if moved:
            self.doc.move(moved)


class EditorView(QGraphicsView):
    """Zooms with the wheel, pans with the middle button, accepts ops dropped from the palette. (Space is the
    window's Play shortcut everywhere, so it cannot double as a pan key here.)"""

    op_dropped = Signal(str, QPointF)
    delete_pressed = Signal()

    def __init__(self, scene: EditorScene, parent: QWidget | None = None) -> None:
        super().__init__(scene, parent)
        self.setRenderHints(QPainter.RenderHint.Antialiasing | QPainter.RenderHint.TextAntialiasing)
        self.setDragMode(QGraphicsView.DragMode.RubberBandDrag)
        self.setTransformationAnchor(QGraphicsView.ViewportAnchor.AnchorUnderMouse)
        self.setAcceptDrops(True)
        self.setToolTip("Drag layers in from the palette; drag from an output port (right) to an input port (left) "
                        "or onto a block to wire; wheel to zoom, middle button to pan; Delete removes the selection")
        self._pan: QPointF | None = None

    def zoom(self, factor: float) -> None:
        """Zoom by `factor`, stopping at the limits (the wheel, the zoom actions)."""
        scale = self.transform().m11()
        target = min(max(scale * factor, MIN_ZOOM), MAX_ZOOM)
        self.scale(target / scale, target / scale)

    def fit(self) -> None:
        """Show every block, however wide the graph (the user zooms in from there to read a part), but never
        magnify a small graph past FIT_MAX."""
        rect = self.scene().itemsBoundingRect()
        if rect.isEmpty():
            return
        # Leave room for both scroll bars: the new scale may bring them in, and they take their room from the view.
        bar = self.style().pixelMetric(QStyle.PixelMetric.PM_ScrollBarExtent, None, self)
        room = self.maximumViewportSize() - QSize(bar + 2 * FIT_MARGIN, bar + 2 * FIT_MARGIN)
        scale = max(min(room.width() / rect.width(), room.height() / rect.height(), FIT_MAX), MIN_ZOOM)
        self.setTransform(QTransform.fromScale(scale, scale))
        self.centerOn(rect.center())

    def wheelEvent(self, event: QWheelEvent) -> None:
        self.zoom(1.15 if event.angleDelta().y() > 0 else 1 / 1.15)

    def mousePressEvent(self, event: QMouseEvent) -> None:
        if event.button() == Qt.MouseButton.MiddleButton:
            self._pan = event.position()
            self.setCursor(Qt.CursorShape.ClosedHandCursor)
            return
        super().mousePressEvent(event)

    def mouseMoveEvent(self, event: QMouseEvent) -> None:
        if self._pan is not None:
            delta = event.position() - self._pan
            self._pan = event.position()
            self.horizontalScrollBar().setValue(self.horizontalScrollBar().value() - int(delta.x()))
            self.verticalScrollBar().setValue(self.verticalScrollBar().value() - int(delta.y()))
            return
        super().mouseMoveEvent(event)

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:
        if self._pan is not None and event.button() == Qt.MouseButton.MiddleButton:
            self._pan = None
            self.unsetCursor()
            return
        super().mouseReleaseEvent(event)

    def keyPressEvent(self, event: QKeyEvent) -> None:
        if event.key() in (Qt.Key.Key_Delete, Qt.Key.Key_Backspace):
            self.delete_pressed.emit()
            return
        super().keyPressEvent(event)

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        if event.mimeData().hasFormat(MIME_OP):
            event.acceptProposedAction()
        else:
            super().dragEnterEvent(event)

    def dragMoveEvent(self, event: QDragMoveEvent) -> None:
        if event.mimeData().hasFormat(MIME_OP):
            event.acceptProposedAction()
        else:
            super().dragMoveEvent(event)

    def dropEvent(self, event: QDropEvent) -> None:
        if not event.mimeData().hasFormat(MIME_OP):
            super().dropEvent(event)
            return
        op = bytes(event.mimeData().data(MIME_OP).data()).decode()
        event.acceptProposedAction()
        self.op_dropped.emit(op, self.mapToScene(event.position().toPoint()))

