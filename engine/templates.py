"""Model templates an editor inserts as ordinary, editable graphs, and the layered auto-layout they use.

A template that suits the session's dataset (MLP, residual MLP) takes its input shape and head from it; the
others declare the input they are built for (28×28 images, 16-token sequences, 8-node graphs), so they are
shape-checked now and train once their dataset is chosen. The token templates follow the head: a per-token head
(a sequences task such as reverse) gives its length and vocabulary and gets an answer at every step, any other a
pooled classifier; ``stack.template_for`` also fits a template to the session's data (vocabulary, length).
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import networkx as nx

from .head import Head
from .spec import ModelSpec

COLUMN_GAP = 250.0  # editor units between generations: a block is ~156 wide, the rest shows the wire's shape
ROW_GAP = 110.0

IMAGE = [1, 28, 28]
TOKENS, VOCAB = 16, 32
NODES, NODE_FEATURES = 8, 4


class _Builder:
    def __init__(self) -> None:
        self.nodes: list[dict[str, Any]] = []
        self.edges: list[list[str]] = []

    def add(self, node_id: str, op: str, *inputs: str, **params: Any) -> str:
        self.nodes.append({"id": node_id, "op": op, "params": params})
        self.edges.extend([src, node_id] for src in inputs)
        return node_id

    def model(self) -> dict[str, Any]:
        return auto_layout({"nodes": self.nodes, "edges": self.edges})


def auto_layout(model: dict[str, Any]) -> dict[str, Any]:
    """The model dict with positions: one column per topological generation, each column centred."""
    g = nx.DiGraph()
    g.add_nodes_from(n["id"] for n in model["nodes"])
    g.add_edges_from(tuple(e) for e in model["edges"])
    if not nx.is_directed_acyclic_graph(g):
        return model  # a cycle has no layers; leave it where the user put it
    place: dict[str, tuple[float, float]] = {}
    for col, generation in enumerate(nx.topological_generations(g)):
        # Keep the user's vertical order within a column where there is one.
        old = {n["id"]: n.get("position") for n in model["nodes"]}
        generation.sort(key=lambda n: (old[n][1] if old[n] else 0.0, n))
        top = -(len(generation) - 1) * ROW_GAP / 2
        for row, n in enumerate(generation):
            place[n] = (col * COLUMN_GAP, top + row * ROW_GAP)
    return {**model, "nodes": [{**n, "position": list(place[n["id"]])} for n in model["nodes"]]}


def mlp(head: Head) -> dict[str, Any]:
    b = _Builder()
    x = b.add("input", "input")
    x = b.add("dense_1", "dense", x, units=8, activation="relu")
    x = b.add("dense_2", "dense", x, units=8, activation="relu")
    x = b.add("dense_3", "dense", x, units=head.units)
    b.add("output", "output", x, activation=head.activation)
    return b.model()


def residual_mlp(head: Head) -> dict[str, Any]:
    b = _Builder()
    x = b.add("input", "input")
    stem = b.add("stem", "dense", x, units=8, activation="relu")
    y = b.add("res_a", "dense", stem, units=8, activation="relu")
    y = b.add("res_b", "dense", y, units=8)
    s = b.add("skip_add", "add", stem, y)
    s = b.add("relu", "activation", s, fn="relu")
    s = b.add("dense_out", "dense", s, units=head.units)
    b.add("output", "output", s, activation=head.activation)
    return b.model()


def lenet(head: Head) -> dict[str, Any]:
    b = _Builder()
    x = b.add("input", "input", shape=IMAGE)
    x = b.add("conv_1", "conv2d", x, filters=6, kernel=5, padding=2, activation="relu")
    x = b.add("pool_1", "max_pool", x, kernel=2)
    x = b.add("conv_2", "conv2d", x, filters=16, kernel=5, activation="relu")
    x = b.add("pool_2", "max_pool", x, kernel=2)
    x = b.add("flatten", "flatten", x)
    x = b.add("dense_1", "dense", x, units=120, activation="relu")
    x = b.add("dense_2", "dense", x, units=84, activation="relu")
    x = b.add("dense_3", "dense", x, units=10)
    b.add("output", "output", x, activation="softmax")
    return b.model()


def residual_block(head: Head) -> dict[str, Any]:
    b = _Builder()
    x = b.add("input", "input", shape=IMAGE)
    stem = b.add("stem", "conv2d", x, filters=16, kernel=3, padding=1, activation="relu")
    y = b.add("conv_a", "conv2d", stem, filters=16, kernel=3, padding=1, bias=False)  # BN has the shift
    y = b.add("bn_a", "batch_norm", y)
    y = b.add("relu_a", "activation", y, fn="relu")
    y = b.add("conv_b", "conv2d", y, filters=16, kernel=3, padding=1, bias=False)
    y = b.add("bn_b", "batch_norm", y)
    s = b.add("skip_add", "add", stem, y)
    s = b.add("relu", "activation", s, fn="relu")
    s = b.add("gap", "global_avg_pool", s)
    s = b.add("dense", "dense", s, units=10)
    b.add("output", "output", s, activation="softmax")
    return b.model()


def inception(head: Head) -> dict[str, Any]:
    b = _Builder()
    x = b.add("input", "input", shape=IMAGE)
    stem = b.add("stem", "conv2d", x, filters=16, kernel=3, padding=1, activation="relu")
    one = b.add("branch_1x1", "conv2d", stem, filters=8, kernel=1, activation="relu")
    r3 = b.add("reduce_3x3", "conv2d", stem, filters=8, kernel=1, activation="relu")
    three = b.add("branch_3x3", "conv2d", r3, filters=8, kernel=3, padding=1, activation="relu")
    r5 = b.add("reduce_5x5", "conv2d", stem, filters=4, kernel=1, activation="relu")
    five = b.add("branch_5x5", "conv2d", r5, filters=8, kernel=5, padding=2, activation="relu")
    pool = b.add("branch_pool", "max_pool", stem, kernel=3, stride=1, padding=1)
    proj = b.add("pool_proj", "conv2d", pool, filters=8, kernel=1, activation="relu")
    cat = b.add("concat", "concat", one, three, five, proj, axis=0)
    s = b.add("gap", "global_avg_pool", cat)
    s = b.add("dense", "dense", s, units=10)
    b.add("output", "output", s, activation="softmax")
    return b.model()


def autoencoder(head: Head) -> dict[str, Any]:
    b = _Builder()
    x = b.add("input", "input", shape=IMAGE)
    x = b.add("flatten", "flatten", x)
    x = b.add("encoder", "dense", x, units=128, activation="relu")
    x = b.add("code", "dense", x, units=16, activation="relu")
    x = b.add("decoder", "dense", x, units=128, activation="relu")
    x = b.add("reconstruct", "dense", x, units=784)
    b.add("output", "output", x, activation="sigmoid")
    return b.model()


def vae(head: Head) -> dict[str, Any]:
    b = _Builder()
    x = b.add("input", "input", shape=IMAGE)
    x = b.add("flatten", "flatten", x)
    h = b.add("encoder", "dense", x, units=128, activation="relu")
    mu = b.add("mu", "dense", h, units=8)
    logvar = b.add("logvar", "dense", h, units=8)
    z = b.add("z", "reparam", mu, logvar)
    y = b.add("decoder", "dense", z, units=128, activation="relu")
    y = b.add("reconstruct", "dense", y, units=784)
    b.add("output", "output", y, activation="sigmoid")
    return b.model()


def conv_autoencoder(head: Head) -> dict[str, Any]:
    b = _Builder()
    x = b.add("input", "input", shape=IMAGE)
    x = b.add("down_1", "conv2d", x, filters=16, kernel=3, stride=2, padding=1, activation="relu")  # 14×14
    x = b.add("down_2", "conv2d", x, filters=32, kernel=3, stride=2, padding=1, activation="relu")  # 7×7
    x = b.add("up_1", "conv_transpose2d", x, filters=16, kernel=3, stride=2, padding=1, output_padding=1,
              activation="relu")  # 14×14
    x = b.add("up_2", "conv_transpose2d", x, filters=1, kernel=3, stride=2, padding=1, output_padding=1)  # 28×28
    b.add("output", "output", x, activation="sigmoid")
    return b.model()


def _tokens(head: Head) -> tuple[list[int], int, bool]:
    """What a token template reads, from the head: (input shape, vocabulary, answers at every step). A per-token
    head brings its sequence length and vocabulary (its classes are the tokens); any other gets 16-token inputs
    over 32 ids, which ``stack.fit_sequences`` fits to a sequences dataset's own."""
    if head.task == "sequence" and head.shape:
        return list(head.shape), head.n_classes, True
    return [TOKENS], VOCAB, False


def _answer(head: Head) -> tuple[int, str]:
    """Units and output activation of a pooled network's head: the session's when it names classes or a value,
    two softmax classes otherwise (a reconstruction head has no meaning for tokens or pooled features)."""
    if head.task in ("classification", "regression"):
        return head.units, head.activation
    return 2, "softmax"


def recurrent(cell: str) -> Callable[[Head], dict[str, Any]]:
    def template(head: Head) -> dict[str, Any]:
        shape, vocab, per_token = _tokens(head)
        b = _Builder()
        x = b.add("input", "input", shape=shape)
        x = b.add("embedding", "embedding", x, vocab=vocab, dim=16)
        if per_token:  # both directions: step t's answer may depend on later inputs (reverse, sort, add)
            x = b.add(cell, cell, x, hidden=64, bidirectional=True, output="all")
            x = b.add("dense", "dense", x, units=vocab)
            b.add("output", "output", x, activation="softmax")
            return b.model()
        x = b.add(cell, cell, x, hidden=32, output="last")
        units, activation = _answer(head)
        x = b.add("dense", "dense", x, units=units)
        b.add("output", "output", x, activation=activation)
        return b.model()
    return template


def transformer(head: Head) -> dict[str, Any]:
    shape, vocab, per_token = _tokens(head)
    b = _Builder()
    x = b.add("input", "input", shape=shape)
    x = b.add("embedding", "embedding", x, vocab=vocab, dim=32)
    x = b.add("positional", "positional", x, kind="sinusoidal", max_len=64)
    x = b.add("block_1", "transformer_block", x, heads=4, ff=64)
    x = b.add("block_2", "transformer_block", x, heads=4, ff=64)
    x = b.add("norm", "layer_norm", x)
    if per_token:
        x = b.add("dense", "dense", x, units=vocab)
        b.add("output", "output", x, activation="softmax")
        return b.model()
    x = b.add("pool", "readout", x, reduce="mean")
    units, activation = _answer(head)
    x = b.add("dense", "dense", x, units=units)
    b.add("output", "output", x, activation=activation)
    return b.model()


def seq2seq(head: Head) -> dict[str, Any]:
    """A GRU reads the input; a second GRU writes the answer from the answer so far (decoder_input: teacher
    forcing while training), each of its steps attending over every encoder step."""
    shape, vocab, _ = _tokens(head)
    b = _Builder()
    x = b.add("input", "input", shape=shape)
    x = b.add("embedding", "embedding", x, vocab=vocab, dim=32)
    enc = b.add("encoder", "gru", x, hidden=32, output="all")
    y = b.add("decoder_input", "decoder_input")
    y = b.add("dec_embedding", "embedding", y, vocab=vocab, dim=32)
    dec = b.add("decoder", "gru", y, hidden=32, output="all")
    att = b.add("attend", "cross_attention", dec, enc, heads=1)  # query: the decoder; context: the encoder
    y = b.add("join", "concat", dec, att)
    y = b.add("dense", "dense", y, units=vocab)
    b.add("output", "output", y, activation="softmax")
    return b.model()


def vit(head: Head) -> dict[str, Any]:
    classes = head.task == "classification" and head.activation == "softmax"
    units = head.n_classes if classes else 10  # the session's classes, or the ten digits
    b = _Builder()
    x = b.add("input", "input", shape=IMAGE)
    x = b.add("patches", "patch_embedding", x, patch=7, dim=32, class_token=True)  # 16 patches + class token
    x = b.add("positional", "positional", x, kind="learned", max_len=64)
    x = b.add("block_1", "transformer_block", x, heads=4, ff=64)
    x = b.add("block_2", "transformer_block", x, heads=4, ff=64)
    x = b.add("norm", "layer_norm", x)
    x = b.add("class_token", "readout", x, reduce="first")
    x = b.add("dense", "dense", x, units=units)
    b.add("output", "output", x, activation="softmax")
    return b.model()


def gcn(head: Head) -> dict[str, Any]:
    b = _Builder()
    x = b.add("input", "input", shape=[NODES, NODE_FEATURES])
    a = b.add("adjacency", "adjacency", nodes=NODES)
    x = b.add("gcn_1", "gcn", x, a, units=16)
    x = b.add("gcn_2", "gcn", x, a, units=16)
    x = b.add("readout", "readout", x, reduce="mean")
    x = b.add("dense", "dense", x, units=2)
    b.add("output", "output", x, activation="softmax")
    return b.model()


@dataclass(frozen=True)
class Template:
    name: str
    title: str
    doc: str
    make: Callable[[Head], dict[str, Any]]
    data: str  # what data it is built for: "session" (fits any), "images", "tokens", "graphs"

    def model(self, head: Head | None = None) -> ModelSpec:
        return ModelSpec.model_validate(self.make(head or Head()))


TEMPLATES: dict[str, Template] = {t.name: t for t in (
    Template("mlp", "MLP", "Two hidden layers of 8 ReLU units; fits the session's dataset.", mlp, "session"),
    Template("residual_mlp", "Residual MLP", "A skip connection adds a block's input to its output.",
             residual_mlp, "session"),
    Template("lenet", "LeNet-style CNN", "Two conv + max-pool stages, then three dense layers (28×28 images).",
             lenet, "images"),
    Template("residual_block", "Residual block (CNN)", "conv–BN–ReLU–conv–BN plus the identity, as in ResNet.",
             residual_block, "images"),
    Template("inception", "Inception block", "1×1, 3×3, 5×5 and pooling branches joined on the channels.",
             inception, "images"),
    Template("autoencoder", "Autoencoder", "784 → 128 → 16 → 128 → 784: squeeze images through a code.",
             autoencoder, "images"),
    Template("vae", "Variational autoencoder", "Encoder to μ and log σ², sample z, decode; the KL joins the loss.",
             vae, "images"),
    Template("conv_autoencoder", "Conv autoencoder", "Strided convolutions down to 7×7, transposed ones back up.",
             conv_autoencoder, "images"),
    Template("rnn", "RNN", "Embedding → RNN: its last state → classes, or for a per-token task (reverse, sort) "
             "a bidirectional RNN that answers at every step.", recurrent("rnn"), "tokens"),
    Template("lstm", "LSTM", "Embedding → LSTM: its last state → classes, or for a per-token task a bidirectional "
             "LSTM that answers at every step.", recurrent("lstm"), "tokens"),
    Template("gru", "GRU", "Embedding → GRU: its last state → classes, or for a per-token task a bidirectional GRU "
             "that answers at every step.", recurrent("gru"), "tokens"),
    Template("transformer", "Transformer",
             "Embedding + positions → two encoder blocks → a token at every step, or the mean over steps → classes.",
             transformer, "tokens"),
    Template("seq2seq", "Encoder–decoder with attention",
             "A GRU encoder; a GRU decoder fed the answer so far behind ▶ (teacher forcing), attending over the "
             "encoder's steps; their join → a token at every step (per-token tasks).", seq2seq, "tokens"),
    Template("vit", "Vision transformer (ViT)",
             "7×7 patches + a class token → positions → two encoder blocks → the class token → classes (28×28 "
             "images).", vit, "images"),
    Template("gcn", "GCN graph classifier", "Two graph convolutions → mean readout → classes (8-node graphs).",
             gcn, "graphs"),
)}
