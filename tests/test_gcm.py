"""GCM (paper 2): the score is the mean of the map, Eq. 7, clipping, sizes, errors."""

from __future__ import annotations

import pytest
import torch

from xai_helpers import gcm as gcm_module
from xai_helpers import models
from xai_helpers.gcm import GCM, layer_table, plain_cnn


@pytest.fixture(scope="module")
def gcm():
    torch.manual_seed(0)
    model = GCM(10, 3)
    # non-trivial BN statistics, so eval mode is not the identity on the running stats
    model.train()
    with torch.no_grad():
        model(torch.rand(16, 3, 32, 32))
    return model.eval()


def test_each_score_is_the_mean_of_a_ccm_computed_independently(gcm):
    """Eq. 1-4 from the raw weights (:func:`_by_hand`), not from ``maps()``: the model's
    scores are the mean over channels and pixels of Tile(CWM) * image."""
    x = torch.rand(5, 3, 32, 32)
    cwm, ccm, scores = gcm.maps(x)
    assert cwm.shape == (5, 10, 32, 32)
    assert ccm.shape == (5, 10, 3, 32, 32)
    assert scores.shape == (5, 10)
    state = {k: v.double() for k, v in gcm.state_dict().items()}
    hand_cwm = _by_hand(state, x.double(), gcm.skips, clip=False)  # Eq. 1
    hand_ccm = hand_cwm.unsqueeze(2) * x.double().unsqueeze(1)  # Eq. 2-3
    torch.testing.assert_close(ccm.double(), hand_ccm, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(gcm(x).double(), hand_ccm.mean(dim=(2, 3, 4)),  # Eq. 4
                               rtol=1e-5, atol=1e-6)


def test_eq7_inner_product_of_the_hand_computed_weights_is_the_score(gcm):
    x = torch.rand(3, 3, 32, 32)
    state = {k: v.double() for k, v in gcm.state_dict().items()}
    weights = _by_hand(state, x.double(), gcm.skips, clip=False).unsqueeze(2).expand(
        -1, -1, 3, -1, -1)  # W_j = Tile(CWM_j)
    inner = torch.einsum("nkdhw,ndhw->nk", weights, x.double())
    rcd = 3 * 32 * 32
    torch.testing.assert_close(gcm(x).double() * rcd, inner, rtol=1e-5, atol=1e-4)


def test_clipped_model_never_has_negative_maps():
    torch.manual_seed(1)
    model = GCM(10, 3, clip_negative=True).eval()
    cwm, ccm, scores = model.maps(torch.rand(4, 3, 32, 32))
    assert cwm.min() >= 0 and ccm.min() >= 0 and scores.min() >= 0
    assert (cwm > 0).any()  # not trivially all zero
    signed = GCM(10, 3).eval()
    signed.load_state_dict(model.state_dict())
    assert signed.cwm(torch.rand(4, 3, 32, 32)).min() < 0  # same weights, unclipped


def test_parameter_counts_within_their_bands():
    n_gcm = models.count_parameters(models.build("gcm_cifar10"))
    n_cnn = models.count_parameters(models.build("cnn_cifar10"))
    assert abs(n_gcm - 162_000) <= 0.10 * 162_000  # the paper: about 162,000
    assert abs(n_cnn - n_gcm) <= 0.10 * n_gcm  # "about the same parameter count"
    assert models.count_parameters(models.build("gcm_cifar10_clip")) == n_gcm


def test_skips_add_encoder_features_without_parameters():
    torch.manual_seed(2)
    with_skips, plain = GCM(10, 3).eval(), GCM(10, 3, skips={}).eval()
    plain.load_state_dict(with_skips.state_dict())  # same parameters: skips have none
    x = torch.rand(2, 3, 32, 32)
    assert not torch.allclose(with_skips(x), plain(x))
    # by hand: decoder layer 11 gets encoder layer 5 added, layer 13 gets layer 2
    enc = dict(with_skips.encoder.named_children())
    dec = dict(with_skips.decoder.named_children())
    h2 = enc["layer2"](enc["layer1"](x))
    h5 = enc["layer5"](enc["layer4"](enc["layer3"](h2)))
    h = h5
    for name in ("layer6", "layer7", "layer8", "layer9", "layer10"):
        h = enc[name](h)
    h = dec["layer12"](dec["layer11"](h) + h5)
    h = dec["layer14"](dec["layer13"](h) + h2)
    assert torch.allclose(with_skips.cwm(x), with_skips.layer15(h), atol=1e-6)
    assert models.build("gcm_cifar10_v1").skips == {}


def test_residual_layers_add_their_input_without_parameters():
    torch.manual_seed(3)
    res, plain = GCM(10, 3, residual=True).eval(), GCM(10, 3).eval()
    res.load_state_dict(plain.state_dict())  # same parameters: the additions have none
    # only stride-1 layers whose input and output channels agree can add their input
    assert res.residual == {"layer2", "layer4", "layer5", "layer7", "layer8", "layer9",
                            "layer10", "layer12", "layer14"}
    x = torch.rand(2, 3, 32, 32)
    enc = dict(res.encoder.named_children())
    h1 = enc["layer1"](x)
    h2 = enc["layer2"](h1) + h1
    h3 = enc["layer3"](h2)
    h4 = enc["layer4"](h3) + h3
    h5 = enc["layer5"](h4) + h4
    h = enc["layer6"](h5)
    for name in ("layer7", "layer8", "layer9", "layer10"):
        h = enc[name](h) + h
    dec = dict(res.decoder.named_children())
    h = dec["layer11"](h) + h5
    h = dec["layer12"](h) + h
    h = dec["layer13"](h) + h2
    h = dec["layer14"](h) + h
    assert torch.allclose(res.cwm(x), res.layer15(h), atol=1e-5)
    cwm, ccm, scores = res.maps(x)  # Eq. 4 still holds
    assert torch.allclose(scores, ccm.mean(dim=(2, 3, 4)), atol=1e-7)
    assert not torch.allclose(res(x), plain(x))


@pytest.mark.parametrize("clip", [False, True])
def test_mirror_averaged_maps(clip):
    torch.manual_seed(4)
    single = GCM(10, 3, clip_negative=clip).eval()
    mirror = GCM(10, 3, clip_negative=clip, mirror=True).eval()
    mirror.load_state_dict(single.state_dict())
    x = torch.rand(3, 3, 32, 32)
    want = 0.5 * (single.cwm(x) + single.cwm(x.flip(3)).flip(3))
    cwm, ccm, scores = mirror.maps(x)
    assert torch.allclose(cwm, want, atol=1e-6)
    assert torch.allclose(scores, ccm.mean(dim=(2, 3, 4)), atol=1e-7)  # Eq. 4 holds
    # a mirrored image gives mirrored maps and the same scores
    cwm_f, _, scores_f = mirror.maps(x.flip(3))
    assert torch.allclose(cwm_f, cwm.flip(3), atol=1e-6)
    assert torch.allclose(scores_f, scores, atol=1e-6)
    if clip:
        assert cwm.min() >= 0
    mirror.train()  # training sees one view
    single.train()
    assert torch.allclose(mirror.cwm(x), single.cwm(x), atol=1e-6)


def test_moved_views_are_moved_back_and_averaged_over_the_views_that_saw_each_pixel():
    net = GCM(4, 3, mirror=True, shifts=2).eval()
    assert len(net.views()) == 10 and (True, 0, -2) in net.views()
    # a translation-equivariant stand-in for the network: every moved map moves back exactly,
    # so the average is the single view's map, borders included (no zero-fill dilution)
    net._cwm = lambda x: x[:, :1].repeat(1, 4, 1, 1)
    x = torch.rand(2, 3, 16, 16)
    torch.testing.assert_close(net.cwm(x), x[:, :1].repeat(1, 4, 1, 1))


def test_views_in_one_batch_or_one_at_a_time_give_the_same_maps(monkeypatch):
    torch.manual_seed(6)
    net = GCM(10, 3, residual=True, mirror=True, shifts=2).eval()
    x = torch.rand(3, 3, 32, 32)
    assert len(x) * len(net.views()) <= gcm_module.VIEW_BATCH  # one batch of 30
    batched = net.cwm(x)
    monkeypatch.setattr(gcm_module, "VIEW_BATCH", 0)  # one view at a time
    torch.testing.assert_close(net.cwm(x), batched, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("clip", [False, True])
def test_shifted_views_keep_eq4_the_mirror_symmetry_and_the_sign(clip):
    torch.manual_seed(5)
    net = GCM(10, 3, clip_negative=clip, mirror=True, shifts=2).eval()
    single = GCM(10, 3, clip_negative=clip, mirror=True).eval()
    single.load_state_dict(net.state_dict())
    x = torch.rand(3, 3, 32, 32)
    cwm, ccm, scores = net.maps(x)
    assert torch.allclose(scores, ccm.mean(dim=(2, 3, 4)), atol=1e-7)  # Eq. 4 holds
    cwm_f, _, scores_f = net.maps(x.flip(3))
    assert torch.allclose(cwm_f, cwm.flip(3), atol=1e-5)
    assert torch.allclose(scores_f, scores, atol=1e-6)
    assert not torch.allclose(cwm, single.cwm(x), atol=1e-4)  # the shifts change the maps
    if clip:
        assert cwm.min() >= 0
    assert "shifts=2" in repr(net) and "shifts" not in repr(single)
    with pytest.raises(ValueError, match="shifts is a number of pixels"):
        GCM(10, 3, shifts=-1)
    net.train()  # training sees one view
    single.train()
    assert torch.allclose(net.cwm(x), single.cwm(x), atol=1e-6)


@pytest.mark.parametrize("channels", [1, 3])
def test_shapes_for_grey_and_colour(channels):
    model = GCM(7, channels).eval()
    cwm, ccm, scores = model.maps(torch.rand(2, channels, 28, 28))
    assert cwm.shape == (2, 7, 28, 28)
    assert ccm.shape == (2, 7, channels, 28, 28)
    assert scores.shape == (2, 7)
    assert plain_cnn(7, channels, mean=(0.5,) * channels)(torch.rand(2, channels, 28, 28)).shape \
        == (2, 7)


@pytest.mark.parametrize("shape, words", [
    ((3, 32, 32), "x[None]"),  # no batch axis
    ((2, 32, 32, 3), "permute"),  # HWC
    ((2, 1, 32, 32), "N x 3 x H x W"),  # wrong channel count
    ((2, 3, 30, 30), "divisible by 4"),
])
def test_wrong_input_gives_a_clear_error(gcm, shape, words):
    with pytest.raises(ValueError, match=words.replace("[", r"\[").replace("]", r"\]")):
        gcm(torch.rand(*shape))


def test_layer_table_is_the_paper_notation(gcm):
    rows = layer_table(gcm)
    assert [r["layer"].split(".")[-1] for r in rows] == [f"layer{i}" for i in range(1, 16)]
    assert rows[0]["parameters (notation)"] == "3x3, c16, s1, BN, ReLU"
    assert rows[-1]["parameters (notation)"] == "3x3, c10, s1"
    assert rows[-1]["output"] == "10x32x32"
    assert sum(r["n_params"] for r in rows) == models.count_parameters(gcm)


def _by_hand(state: dict, x: torch.Tensor, skips: dict[str, str], clip: bool) -> torch.Tensor:
    """Eq. 1 from the raw weights, without the module's code: conv / deconv, BN in eval mode
    (running statistics), ReLU, the U-Net skips, layer 15 (and the clipping ReLU)."""
    import torch.nn.functional as F

    def block(prefix, h, kind, stride):
        w = state[f"{prefix}.conv.weight"]
        if kind == "deconv":
            h = F.conv_transpose2d(h, w, stride=stride)
        else:
            h = F.conv2d(h, w, stride=stride, padding=w.shape[-1] // 2)
        h = F.batch_norm(h, state[f"{prefix}.bn.running_mean"], state[f"{prefix}.bn.running_var"],
                         state[f"{prefix}.bn.weight"], state[f"{prefix}.bn.bias"], eps=1e-5)
        return h.clamp(min=0)

    outputs, h = {}, x
    for name, kind, _, _, stride in gcm_module.GCM_LAYERS:
        part = "encoder" if int(name[5:]) <= gcm_module.N_ENCODER else "decoder"
        h = block(f"{part}.{name}", h, kind, stride)
        if name in skips:
            h = h + outputs[skips[name]]
        outputs[name] = h
    cwm = F.conv2d(h, state["layer15.weight"], state["layer15.bias"], padding=1)
    return cwm.clamp(min=0) if clip else cwm


@pytest.mark.parametrize("name", ["gcm_cifar10", "gcm_cifar10_clip"])
def test_committed_gcm_scores_are_eq7_of_a_cwm_computed_once_by_hand(name):
    """The notebooks' GCMs compute Eq. 1 once (no views averaged): the logits equal
    <Tile(CWM), I> / (R C D) with the CWM of the image computed from the raw weights."""
    from xai_helpers import data

    model = models.load_pretrained(name)
    x = data.load("cifar10", "test", n=16, verbose=False).images
    state = {k: v.double() for k, v in model.state_dict().items()}
    cwm = _by_hand(state, x.double(), gcm_module.GCM_SKIPS, clip=name.endswith("clip"))
    weights = cwm.unsqueeze(2).expand(-1, -1, 3, -1, -1)  # Eq. 2
    eq7 = torch.einsum("nkdhw,ndhw->nk", weights, x.double()) / (3 * 32 * 32)
    with torch.no_grad():
        logits = model(x).double()
        torch.testing.assert_close(model.cwm(x).double(), cwm, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(logits, eq7, rtol=1e-4, atol=1e-4)
    assert (logits.argmax(1) == eq7.argmax(1)).all()
