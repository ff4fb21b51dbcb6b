"""The views table: one entry per live view. The window builds its docks and tabs from it, the File menu its
exports, the controller learns the probes from each view's class. Adding a view is one module and one entry."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from PySide6.QtCore import Qt

from engine import SessionSpec
from engine.datasets import family_of

from .adversarial import AdversarialView
from .attention import AttentionView, has_attention
from .base import LiveView
from .confusion import ConfusionView
from .curves import CurvesView
from .drawing import DrawView
from .features import FeaturesView, has_feature_maps
from .health import HealthView
from .latent import LatentView
from .loss_split import LossSplitView
from .manifold import ManifoldView
from .network import NetworkView
from .output import OutputView
from .positional import PositionalView, has_positional
from .reconstructions import ReconstructionsView
from .recurrent import RecurrentView, has_recurrent
from .saliency import SaliencyView
from .samples import SamplesView
from .sequence_curves import SequenceCurvesView
from .sequence_predictions import SequencePredictionsView, is_sequence_set

Area = Qt.DockWidgetArea


def has_plane(spec: SessionSpec) -> bool:
    """The dataset family has a 2-D input plane to sweep (the boundary and neuron pictures need one)."""
    return family_of(spec.dataset).plane is not None


def is_image_classifier(spec: SessionSpec) -> bool:
    """The dataset is a set of images to classify (samples, saliency, confusion)."""
    return family_of(spec.dataset).kind == "images" and spec.dataset.task == "classification"


def is_autoencoder(spec: SessionSpec) -> bool:
    """The network gives its input back (reconstructions, decoded pictures)."""
    return spec.dataset.task == "reconstruction"


def has_loss_parts(spec: SessionSpec) -> bool:
    """The loss has parts worth plotting apart: a reconstruction's, and a VAE's KL term."""
    return is_autoencoder(spec) or any(n.op == "reparam" for n in spec.model.nodes)


def always(spec: SessionSpec) -> bool:
    return True


@dataclass(frozen=True)
class ViewEntry:
    """Where a view lives in the window and when it applies."""

    name: str  # key in the session's ui and in exports
    title: str  # dock or tab title
    cls: type[LiveView]
    area: Area | None  # dock area; None puts the view in the central tabs
    tooltip: str
    export_label: str  # "Output view" → "Export ▸ Output view as PNG…"
    applies: Callable[[SessionSpec], bool] = always
    tab_with: str | None = None  # tabify this dock behind another view's dock

    @property
    def probes(self) -> frozenset[str]:
        return self.cls.probes


VIEWS: tuple[ViewEntry, ...] = (
    ViewEntry("output", "Output", OutputView, Area.RightDockWidgetArea,
              "The network's output over the input plane, with the data points", "Output view", has_plane),
    ViewEntry("curves", "Curves", CurvesView, Area.RightDockWidgetArea,
              "Loss and accuracy per epoch, and every step's loss", "Loss curves"),
    ViewEntry("health", "Health", HealthView, Area.RightDockWidgetArea,
              "Gradient norms, dead units and weight histograms per layer", "Health plots", tab_with="curves"),
    ViewEntry("network", "Network", NetworkView, None,
              "The network as it trains: neurons, weights and the layer-stack editor", "Network view", has_plane),
    ViewEntry("saliency", "Saliency", SaliencyView, Area.RightDockWidgetArea,
              "Which pixels of the selected test image the answer depends on", "Saliency view", is_image_classifier),
    ViewEntry("confusion", "Confusion", ConfusionView, Area.RightDockWidgetArea,
              "Test-set confusion matrix with per-class precision, recall and F1", "Confusion matrix", is_image_classifier,
              tab_with="curves"),
    ViewEntry("features", "Features", FeaturesView, Area.RightDockWidgetArea,
              "Feature maps of the selected test image at one layer, and the first convolution's kernels",
              "Features view", has_feature_maps, tab_with="saliency"),
    ViewEntry("adversarial", "Adversarial", AdversarialView, Area.RightDockWidgetArea,
              "FGSM: the selected test image nudged to fool the network, and test accuracy under attack",
              "Adversarial view", is_image_classifier, tab_with="saliency"),
    ViewEntry("samples", "Samples", SamplesView, None,
              "Test images with the network's prediction; click one to explain it", "Samples view", is_image_classifier),
    ViewEntry("drawing", "Draw", DrawView, None,
              "Draw a picture for the network to classify, with its saliency", "Drawing view", is_image_classifier),
    ViewEntry("latent", "Latent", LatentView, None,
              "Any layer's activations as points coloured by label (PCA live, t-SNE on demand); an autoencoder "
              "decodes where you click; a sequence network's embedding shows its token table with each token's "
              "nearest tokens", "Latent view"),
    ViewEntry("reconstructions", "Reconstructions", ReconstructionsView, Area.RightDockWidgetArea,
              "Test pictures above what the autoencoder gives back, optionally through added noise",
              "Reconstructions view", is_autoencoder, tab_with="saliency"),
    ViewEntry("manifold", "Manifold", ManifoldView, Area.RightDockWidgetArea,
              "A regular grid over the latent plane, each point decoded into a picture", "Manifold grid",
              is_autoencoder, tab_with="reconstructions"),
    ViewEntry("loss_split", "Loss split", LossSplitView, Area.RightDockWidgetArea,
              "The loss's reconstruction and KL parts per epoch", "Loss split curves", has_loss_parts,
              tab_with="curves"),
    ViewEntry("sequence_predictions", "Predictions", SequencePredictionsView, None,
              "Examples of the test or longer held-out set: input, target and the network's answer, right tokens "
              "green, wrong red", "Sequence predictions view", is_sequence_set),
    ViewEntry("sequence_curves", "Sequence accuracy", SequenceCurvesView, Area.RightDockWidgetArea,
              "Token and exact-sequence accuracy per epoch on the test set and the longer held-out set",
              "Sequence accuracy curves", is_sequence_set, tab_with="curves"),
    ViewEntry("recurrent", "Recurrent", RecurrentView, Area.RightDockWidgetArea,
              "Inside an RNN, LSTM or GRU block: one example's hidden-state path and gates over time, and how far "
              "the loss's gradient reaches back", "Recurrent view", has_recurrent),
    ViewEntry("attention", "Attention", AttentionView, None,
              "One example's attention maps per layer and head (click one to enlarge it); a vision transformer's "
              "class-token attention laid over the picture", "Attention maps", has_attention),
    ViewEntry("positional", "Positional", PositionalView, Area.RightDockWidgetArea,
              "The positional encoding's table, position × dimension: fixed sinusoids or learned vectors",
              "Positional encoding", has_positional, tab_with="curves"),
)
