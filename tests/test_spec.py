"""Network specs: shipped ones load by name, bad ones give errors that name the problem."""

import pytest

from neurodecorr.errors import SpecError
from neurodecorr.nets.spec import load_spec, model_names, spec_from_dict


def test_shipped_models_load_by_name():
    assert {"paper-mlp", "small-mlp"} <= set(model_names())
    paper = load_spec("paper-mlp")
    layers = paper.layers(784, 10)
    assert [(l.n_in, l.n_out) for l in layers] == [(784, 1000)] + [(1000, 1000)] * 3 + [(1000, 10)]
    assert all(l.decorrelated for l in layers)
    assert [l.activation for l in layers] == ["leaky_relu"] * 4 + ["identity"]
    assert paper.loss == "cross_entropy"


def test_spec_from_a_user_file(tmp_path):
    path = tmp_path / "mine.yaml"
    path.write_text("hidden:\n  - {width: 8, activation: tanh}\nloss: mse\ndecorrelate: [1]\n")
    spec = load_spec(path)
    assert spec.name == "mine" and spec.loss == "mse"
    assert [l.decorrelated for l in spec.layers(4, 3)] == [False, True]


@pytest.mark.parametrize("data,fragment", [
    ({"hidden": [{"width": 8}], "colour": "red"}, "unknown key"),
    ({"hidden": [{"width": -3}]}, "hidden[0].width"),
    ({"hidden": [{"width": 8, "activation": "swish"}]}, "hidden[0].activation"),
    ({"hidden": [], "loss": "hinge"}, "'loss'"),
    ({"hidden": [], "decorrelate": "some"}, "'decorrelate'"),
    ({"hidden": {"width": 3}}, "'hidden'"),
])
def test_bad_specs_name_the_key(data, fragment):
    with pytest.raises(SpecError) as err:
        spec_from_dict(data, "bad.yaml")
    assert fragment in str(err.value) and "bad.yaml" in str(err.value)


def test_decorrelate_index_out_of_range():
    spec = spec_from_dict({"hidden": [{"width": 4}], "decorrelate": [5]}, "x.yaml")
    with pytest.raises(SpecError, match="0..1"):
        spec.layers(3, 2)


def test_unknown_model_lists_the_shipped_ones():
    with pytest.raises(SpecError, match="paper-mlp"):
        load_spec("resnet-9000")
