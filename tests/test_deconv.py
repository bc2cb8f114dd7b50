"""The deconvolution engine against independent references: Captum, autograd, and a slow explicit deconvnet."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from captum.attr import NeuronDeconvolution, NeuronGuidedBackprop
from torch import nn

import auralise
from auralise.engine import rules
from auralise.errors import AuraliseError, BadParameterError

RTOL = 1e-5


def rel_err(a: torch.Tensor, b: torch.Tensor) -> float:
    scale = b.abs().max()
    assert scale > 0, "reference is all zero: the test would prove nothing"
    return float((a - b).abs().max() / scale)


def assert_all_match(D: torch.Tensor, refs: list[torch.Tensor]) -> None:
    """D[k] equals refs[k] to RTOL; a dead feature (zero reference) must project to zero; one must be alive."""
    alive = [k for k, ref in enumerate(refs) if ref.abs().max() > 0]
    assert alive, "every feature is dead for this input: the test would prove nothing"
    for k, ref in enumerate(refs):
        if k in alive:
            assert rel_err(D[k], ref) < RTOL, k
        else:
            assert D[k].abs().max() == 0, k


def captum(cls, net: nn.Module, tap_module: nn.Module, S: torch.Tensor, feature: int) -> torch.Tensor:
    """The DESIGN.md oracle: seed = the feature's activations at the tap, all else zero."""
    attr = cls(net, tap_module).attribute(
        S.clone(), neuron_selector=lambda o: (o[:, feature] * o[:, feature].detach()).flatten(1).sum(1)
    )
    return attr[0].detach()


def randomise_batch_norms(net: nn.Module) -> None:
    g = torch.Generator().manual_seed(1)
    for m in net.modules():
        if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
            n = m.num_features
            m.running_mean.copy_(torch.rand(n, generator=g) - 0.5)
            m.running_var.copy_(torch.rand(n, generator=g) + 0.5)
            m.weight.data.copy_(torch.rand(n, generator=g) + 0.5)
            m.bias.data.copy_(torch.rand(n, generator=g) - 0.3)


def seq_net(inplace: bool = False, batch_norm: bool = False) -> nn.Sequential:
    torch.manual_seed(0)
    layers: list[nn.Module] = []
    c = 1
    for out, pool in ((6, nn.MaxPool2d(2)), (8, nn.MaxPool2d(3, stride=2)), (5, nn.MaxPool2d((2, 3)))):
        layers.append(nn.Conv2d(c, out, 3, padding=1))
        if batch_norm:
            layers.append(nn.BatchNorm2d(out))
        layers += [nn.ReLU(inplace=inplace), pool]
        c = out
    net = nn.Sequential(*layers).eval()
    randomise_batch_norms(net)
    return net


def spectrogram_like(shape=(1, 1, 48, 64)) -> torch.Tensor:
    g = torch.Generator().manual_seed(2)
    return torch.rand(shape, generator=g) ** 2


def tap_modules(net: nn.Sequential) -> list[nn.Module]:
    """The pooling module after each conv (the 'block' tap for these sequential nets)."""
    return [m for m in net if isinstance(m, nn.MaxPool2d)]


@pytest.mark.parametrize("inplace,batch_norm", [(False, False), (True, False), (False, True), (True, True)])
@pytest.mark.parametrize("method,cls", [("deconvnet", NeuronDeconvolution), ("guided", NeuronGuidedBackprop)])
def test_sequential_matches_captum(inplace, batch_norm, method, cls):
    net = seq_net(inplace, batch_norm)
    S = spectrogram_like()
    for layer, tap in enumerate(tap_modules(net), start=1):
        feats = [0, 3, 4]
        D = auralise.deconvolve(net, S, layer=layer, features=feats, method=method)
        assert D.shape == (3, *S.shape[1:])
        assert_all_match(D, [captum(cls, net, tap, S, f) for f in feats])


class ReusedRelu(nn.Module):
    """One in-place ReLU module used after every conv, the pattern Captum warns about but supports."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(3)
        self.c1, self.c2, self.c3 = nn.Conv2d(1, 4, 3, padding=1), nn.Conv2d(4, 6, 3, padding=1), nn.Conv2d(6, 5, 3)
        self.relu = nn.ReLU(inplace=True)
        self.pool = nn.MaxPool2d(2)
        self.top = nn.Identity()  # gives Captum a module whose output is layer 3's tap

    def forward(self, x):
        x = self.pool(self.relu(self.c1(x)))
        x = self.pool(self.relu(self.c2(x)))
        return self.top(self.relu(self.c3(x)))


def test_reused_inplace_relu_matches_captum():
    net = ReusedRelu().eval()
    S = spectrogram_like()
    D = auralise.deconvolve(net, S, layer=3, features=[0, 1, 2, 3, 4])
    assert_all_match(D, [captum(NeuronDeconvolution, net, net.top, S, f) for f in range(5)])


class TwoBranch(nn.Module):
    """Parallel temporal (1x7) and frequency (7x1) branches, concatenated, then a shared conv (Pons-style)."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(4)
        self.time = nn.Sequential(nn.Conv2d(1, 4, (1, 7), padding=(0, 3)), nn.BatchNorm2d(4), nn.ReLU())
        self.freq = nn.Sequential(nn.Conv2d(1, 3, (7, 1), padding=(3, 0)), nn.ReLU(), nn.MaxPool2d((1, 1)))
        self.pool = nn.MaxPool2d(2)
        self.mix = nn.Conv2d(7, 6, 3, padding=1)
        self.act = nn.ReLU()
        self.out_pool = nn.MaxPool2d(2)

    def forward(self, x):
        x = torch.cat([self.time(x), self.freq(x)], dim=1)
        return self.out_pool(self.act(self.mix(self.pool(x))))


def test_branching_concat_matches_captum():
    net = TwoBranch().eval()
    randomise_batch_norms(net)
    S = spectrogram_like()
    graph = auralise.engine.layers.discover(net, S)
    assert [lay.path for lay in graph.layers] == ["time.0", "freq.0", "mix"]
    # the time branch's block ends before the concatenation: at its ReLU
    for layer, tap, feats in ((1, net.time[2], [0, 3]), (2, net.freq[2], [0, 2]), (3, net.out_pool, [1, 5])):
        D = auralise.deconvolve(net, S, layer=layer, features=feats)
        for k, f in enumerate(feats):
            assert rel_err(D[k], captum(NeuronDeconvolution, net, tap, S, f)) < RTOL, (layer, f)


def test_conv1d_net_matches_captum():
    torch.manual_seed(5)
    net = nn.Sequential(
        nn.Conv1d(16, 8, 5, padding=2),
        nn.ReLU(),
        nn.MaxPool1d(3, stride=2),
        nn.Conv1d(8, 6, 3, dilation=2),
        nn.BatchNorm1d(6),
        nn.ReLU(),
        nn.MaxPool1d(2),
    ).eval()
    randomise_batch_norms(net)
    S = spectrogram_like((1, 16, 80))
    for layer, tap in ((1, net[2]), (2, net[6])):
        D = auralise.deconvolve(net, S, layer=layer, features=[0, 3, 5])
        assert D.shape == (3, 16, 80)
        assert_all_match(D, [captum(NeuronDeconvolution, net, tap, S, f) for f in (0, 3, 5)])


class FunctionalNet(nn.Module):
    """ReLU as F.relu, torch.relu and Tensor.relu_ (Captum cannot hook these)."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(6)
        self.c1, self.c2 = nn.Conv2d(1, 5, 3, padding=1), nn.Conv2d(5, 4, (3, 5), stride=(1, 2), padding=(1, 2))

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.c1(x)), 2)
        x = torch.relu(self.c2(x))
        return F.max_pool2d(x.relu_(), 3, stride=2)


def unpool_slow(signal: torch.Tensor, x: torch.Tensor, kernel: int, stride: int) -> torch.Tensor:
    """Route each pooled value back to its window's arg-max in ``x``, window by window; overlaps add up."""
    out = torch.zeros_like(x)
    for c in range(signal.shape[1]):
        for i in range(signal.shape[2]):
            for j in range(signal.shape[3]):
                window = x[0, c, i * stride : i * stride + kernel, j * stride : j * stride + kernel]
                di, dj = divmod(int(torch.argmax(window)), window.shape[1])
                out[0, c, i * stride + di, j * stride + dj] += signal[0, c, i, j]
    return out


def slow_deconvnet(net: FunctionalNet, S: torch.Tensor, feature: int) -> torch.Tensor:
    """Zeiler & Fergus by hand: forward; then unpool with switches, rectify, transposed conv going down."""
    a1 = F.relu(net.c1(S))
    p1 = F.max_pool2d(a1, 2)
    a2 = F.relu(net.c2(p1))
    p2 = F.max_pool2d(a2, 3, stride=2)
    seed = torch.zeros_like(p2)
    seed[:, feature] = p2[:, feature]
    r = F.relu(unpool_slow(seed, a2, 3, 2))
    extra = p1.shape[-1] - ((a2.shape[-1] - 1) * 2 - 2 * 2 + 5)  # output_padding to get p1's width back
    r = F.conv_transpose2d(r, net.c2.weight, stride=(1, 2), padding=(1, 2), output_padding=(0, extra))
    r = F.relu(unpool_slow(r, a1, 2, 2))
    return F.conv_transpose2d(r, net.c1.weight, padding=1)


def test_functional_relu_matches_slow_reference():
    net = FunctionalNet().eval()
    S = spectrogram_like((1, 1, 40, 64))
    with torch.no_grad():
        D = auralise.deconvolve(net, S, layer=2, features=[0, 1, 2, 3])
        for f in range(4):
            assert rel_err(D[f], slow_deconvnet(net, S, f)[0]) < RTOL, f


def test_gradient_rule_is_autograd():
    net = seq_net(inplace=True, batch_norm=True)
    S = spectrogram_like()
    D = auralise.deconvolve(net, S, layer=3, features=[1, 4], method="gradient")
    for k, f in enumerate([1, 4]):
        x = S.clone().requires_grad_(True)
        out = net(x)
        (g,) = torch.autograd.grad((out[:, f] * out[:, f].detach()).sum(), x)
        assert rel_err(D[k], g) < RTOL


@pytest.mark.parametrize("select,count", [("max", 1), ("topk:5", 5)])
def test_max_and_topk_selection_match_captum(select, count):
    net = seq_net()
    S = spectrogram_like()
    tap = tap_modules(net)[1]
    D = auralise.deconvolve(net, S, layer=2, features=[2], select=select)
    with torch.no_grad():
        acts = net[:6](S)[0, 2].flatten()
    top = torch.topk(acts, count).indices
    ref = NeuronDeconvolution(net, tap).attribute(
        S.clone(), neuron_selector=lambda o: (o[:, 2].flatten(1)[:, top] * acts[top]).sum(1)
    )[0]
    assert rel_err(D[0], ref) < RTOL
    full = auralise.deconvolve(net, S, layer=2, features=[2], select="map")
    assert not torch.allclose(full, D)


def test_tap_points_conv_and_activation():
    torch.manual_seed(7)
    net = nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1),
        nn.BatchNorm2d(4),
        nn.ReLU(),
        nn.Dropout(0.3),
        nn.MaxPool2d(2),
        nn.Conv2d(4, 4, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
    ).eval()
    randomise_batch_norms(net)
    S = spectrogram_like()
    graph = auralise.engine.layers.discover(net, S)
    names = graph.signature
    lay = graph.layer(2)
    assert [names[lay.taps[t][0]] for t in ("conv", "activation", "block")] == ["conv2d", "relu", "max_pool2d"]
    lay1 = graph.layer("1")
    assert lay1.path == "0"  # a string of digits is a layer number, not a module path
    assert names[lay1.taps["activation"][0]] == "dropout"  # after the nonlinearity, batch norm and dropout
    for tap, module in (("conv", net[5]), ("activation", net[6]), ("block", net[7])):
        D = auralise.deconvolve(net, S, layer=2, features=[1], tap=tap)
        assert rel_err(D[0], captum(NeuronDeconvolution, net, module, S, 1)) < RTOL, tap


def test_layer_by_module_path_and_bad_layers():
    net = auralise.nets.zoo.build("choi2016", {"channels": 8, "n_layers": 3, "n_frames": 64, "n_bins": 48}).eval()
    S = spectrogram_like()
    by_path = auralise.deconvolve(net, S, layer="features.4", features=[1])
    by_number = auralise.deconvolve(net, S, layer=2, features=[1])
    assert torch.equal(by_path, by_number)
    with pytest.raises(BadParameterError, match="layers 1-3"):
        auralise.deconvolve(net, S, layer=4, features=[0])
    with pytest.raises(BadParameterError, match="no convolution layer named"):
        auralise.deconvolve(net, S, layer="features.9", features=[0])
    with pytest.raises(BadParameterError, match="features 0-7"):
        auralise.deconvolve(net, S, layer=2, features=[8])
    with pytest.raises(BadParameterError, match="unknown method"):
        auralise.deconvolve(net, S, layer=2, features=[0], method="lrp")
    with pytest.raises(BadParameterError, match="topk:K"):
        auralise.deconvolve(net, S, layer=2, features=[0], select="top3")
    with pytest.raises(BadParameterError, match="batch size 1"):
        auralise.deconvolve(net, S.repeat(2, 1, 1, 1), layer=2, features=[0])


class Tripwire(nn.Module):
    def forward(self, x):
        raise AssertionError("the forward pass ran past the requested layer")


def test_forward_stops_at_the_layer_and_any_length_works():
    """The classifier wants 4-s patches; a longer song still projects, and nothing above layer L runs."""
    net = auralise.nets.zoo.build("choi2016", {"channels": 8, "hidden": 16})
    S = torch.rand(1, 1, 257, 600)  # ~14 s, not the 173-frame patch the dense head wants
    D = auralise.deconvolve(net, S, layer=5, features=[0, 7])
    assert D.shape == (2, 1, 257, 600) and torch.isfinite(D).all()
    wired = nn.Sequential(*seq_net()[:4], Tripwire())
    auralise.engine.layers.discover(wired, spectrogram_like())  # the dry run tolerates the failure above the convs
    rules_calls = []
    original = rules.project

    def counting(*args, **kwargs):
        rules_calls.append(1)
        return original(*args, **kwargs)

    auralise.engine.chunking.project = counting
    try:
        D = auralise.deconvolve(wired, spectrogram_like(), layer=1, features=list(range(6)))
    finally:
        auralise.engine.chunking.project = original
    assert D.shape[0] == 6
    assert len(rules_calls) == 1, "six features must be projected in one batched backward pass"


def test_choi2016_matches_captum_on_every_layer():
    net = auralise.nets.zoo.build("choi2016", {"channels": 16, "hidden": 8, "n_frames": 96}).eval()
    torch.manual_seed(8)
    S = spectrogram_like((1, 1, 257, 96))
    pools = [m for m in net.features if isinstance(m, nn.Dropout)]  # block tap: after pool and dropout
    for layer, tap in enumerate(pools, start=1):
        D = auralise.deconvolve(net, S, layer=layer, features=[0, 9, 15])
        assert_all_match(D, [captum(NeuronDeconvolution, net, tap, S, f) for f in (0, 9, 15)])


def test_leaky_relu_elu_and_tanh_rules():
    """Deconvnet rectifies the signal through LeakyReLU/ELU and passes tanh's derivative (rules.py table)."""
    torch.manual_seed(9)
    conv1, conv2 = nn.Conv1d(2, 3, 3), nn.Conv1d(3, 2, 3)
    for act in (nn.LeakyReLU(0.2), nn.ELU(), nn.Tanh()):
        net = nn.Sequential(conv1, act, conv2).eval()
        S = torch.randn(1, 2, 20)
        D = auralise.deconvolve(net, S, layer=2, features=[1])
        with torch.no_grad():
            h = conv1(S)
            top = conv2(act(h))
        seed = torch.zeros_like(top)
        seed[:, 1] = top[:, 1]
        g = F.conv_transpose1d(seed, conv2.weight)
        g = torch.relu(g) if not isinstance(act, nn.Tanh) else g * (1 - torch.tanh(h) ** 2)
        ref = F.conv_transpose1d(g, conv1.weight)
        assert rel_err(D[0], ref) < RTOL, type(act).__name__


def test_data_dependent_forward_is_refused():
    class Switchy(nn.Module):
        def __init__(self):
            super().__init__()
            self.c1, self.c2 = nn.Conv1d(1, 2, 3), nn.Conv1d(2, 2, 3)

        def forward(self, x):
            x = self.c1(x)
            if x.shape[-1] > 20:
                x = torch.sigmoid(x)
            return self.c2(torch.relu(x))

    net = Switchy().eval()
    auralise.engine.layers.discover(net, torch.rand(1, 1, 10))
    with pytest.raises(AuraliseError, match="different path"):
        auralise.project_features(net, torch.rand(1, 1, 40), layer=2, features=[0], example=torch.rand(1, 1, 10))


class FastPathShapes(nn.Module):
    """Convolutions that exercise every transposed-convolution path: matmul+fold (few input channels, dilated),
    the flipped forward convolution, a strided one (generic path), 'same' padding, and overlapping pooling."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(7)
        self.c1 = nn.Conv2d(2, 24, 3, padding=2, dilation=2)  # 2*9 <= 24: matmul + fold
        self.c2 = nn.Conv2d(24, 16, (3, 5), padding="same")  # flipped forward convolution
        self.c3 = nn.Conv2d(16, 12, 3, stride=2, padding=1)  # strided: conv2d_input
        self.pool1, self.pool2 = nn.MaxPool2d(3, stride=2), nn.MaxPool2d(2)
        self.bn = nn.BatchNorm2d(16)
        self.relu1, self.relu2, self.relu3 = nn.ReLU(), nn.ReLU(), nn.ReLU()  # Captum hooks modules only
        self.top = nn.Identity()

    def forward(self, x):
        x = self.pool1(self.relu1(self.c1(x)))
        x = self.pool2(self.relu2(self.bn(self.c2(x))))
        return self.top(self.relu3(self.c3(x)))


@pytest.mark.parametrize("method,cls", [("deconvnet", NeuronDeconvolution), ("guided", NeuronGuidedBackprop)])
def test_every_transposed_convolution_path_matches_captum(method, cls):
    net = FastPathShapes().eval()
    randomise_batch_norms(net)
    S = spectrogram_like((1, 2, 40, 56))
    for layer, tap in ((1, net.c1), (2, net.c2), (3, net.top)):
        tap_name = "block" if tap is net.top else "conv"
        D = auralise.deconvolve(net, S, layer=layer, features=[0, 5, 9], method=method, tap=tap_name)
        assert_all_match(D, [captum(cls, net, tap, S, f) for f in (0, 5, 9)])
