"""The visual-reasoning blocks: CoordConv, multi-block FiLM, the relation network, the GRU branch."""

import itertools

import numpy as np
import pytest

import keras
import mmzoo
from mmzoo.coordconv import AddCoordinates
from mmzoo.fusion import FiLMFusion, RelationFusion

OPTIONS = dict(image_branch="convnet", image_filters=4, image_blocks=3, text_branch="gru",
               image_shape=(32, 32, 3), vocab_size=30, sequence_length=6, embedding_dim=4,
               text_units=8, num_classes=3)
RNG = np.random.default_rng(0)


def inputs(n=4, seed=0):
    rng = np.random.default_rng(seed)
    return {"image": rng.integers(0, 256, (n, 32, 32, 3)).astype("float32"),
            "text": rng.integers(1, 30, (n, 6)).astype("int32")}


def probabilities(model, x):
    return keras.ops.convert_to_numpy(model(x, training=False)["probabilities"])


def randomize(model, seed=0):
    rng = np.random.default_rng(seed)
    for v in model.weights:
        v.assign(rng.normal(0, 0.3, v.shape).astype(v.dtype))


# ---- CoordConv ----------------------------------------------------------------

def test_coordinates_are_rows_and_columns_in_minus_one_to_one():
    x = np.zeros((2, 3, 5, 1), "float32")
    out = keras.ops.convert_to_numpy(AddCoordinates()(x))
    assert out.shape == (2, 3, 5, 3)
    np.testing.assert_allclose(out[0, :, 0, 1], [-1, 0, 1])          # rows
    np.testing.assert_allclose(out[1, 0, :, 2], [-1, -0.5, 0, 0.5, 1])  # columns
    np.testing.assert_array_equal(out[..., 0], 0)
    with pytest.raises(ValueError, match="static height and width"):
        AddCoordinates()(keras.Input((None, None, 3)))


@pytest.mark.parametrize("branch", ["cnn", "convnet"])
def test_coord_channels_is_a_branch_option_that_adds_two_input_channels(branch):
    options = {**OPTIONS, "image_branch": branch, "fusion": "concat", "pooling": "avg"}
    if branch == "cnn":
        del options["image_blocks"]
    plain = mmzoo.build_model("classification", **options)
    coord = mmzoo.build_model("classification", **options, coord_channels=True)
    name = f"image_{branch}"
    convs = lambda m: [l for l in m.get_layer(name).layers if isinstance(l, keras.layers.Conv2D)]
    for a, b in zip(convs(plain), convs(coord)):
        assert b.kernel.shape[2] == a.kernel.shape[2] + 2  # every convolution sees them
    assert any(isinstance(l, AddCoordinates) for l in coord.get_layer(name).layers)
    assert plain.build_options["coord_channels"] is False
    with pytest.raises(ValueError, match=r"Received: coord_channels='yes'"):
        mmzoo.build_model("classification", **{**OPTIONS, "coord_channels": "yes"})


# ---- FiLM at several depths ---------------------------------------------------

def test_one_film_block_is_the_original_layer():
    layer = FiLMFusion(6, pooling="max")
    fmap, cond = RNG.normal(size=(3, 4, 4, 5)).astype("float32"), RNG.normal(size=(3, 7)).astype("float32")
    out = layer([fmap, cond]).numpy()
    assert [w.path.split("/")[-2] for w in layer.weights] == [
        "project_input_0", "project_input_0", "gamma_beta", "gamma_beta"]
    k, b = (w.numpy() for w in layer.project_map.weights)
    gk, gb = (w.numpy() for w in layer.film.weights)
    gamma, beta = np.split(cond @ gk + gb, 2, axis=-1)
    z = np.maximum((1 + gamma[:, None, None]) * (fmap @ k + b) + beta[:, None, None], 0)
    np.testing.assert_allclose(out, z.max(axis=(1, 2)), rtol=1e-5, atol=1e-5)


def test_residual_film_blocks_follow_perez_et_al():
    fmap, cond = RNG.normal(size=(2, 3, 3, 4)).astype("float32"), RNG.normal(size=(2, 5)).astype("float32")
    layer = FiLMFusion(6, pooling="avg", film_blocks=3, coord_channels=True, film_output_dim=7)
    out = layer([fmap, cond], training=False).numpy()
    assert out.shape == (2, 7)
    grid = keras.ops.convert_to_numpy(AddCoordinates()(np.zeros((2, 3, 3, 0), "float32")))

    def coords(x):
        return np.concatenate([x, grid], axis=-1)

    def dense(l, x):
        k, b = (w.numpy() for w in l.weights)
        return x @ k + b

    gb = dense(layer.film, cond).reshape(2, 3, 2, 6)
    film = lambda x, i: np.maximum((1 + gb[:, i, 0, None, None]) * x + gb[:, i, 1, None, None], 0)
    z = film(dense(layer.project_map, coords(fmap)), 0)
    for i, (entry, conv, norm) in enumerate(layer.blocks, start=1):
        h = np.maximum(dense(entry, coords(z)), 0)
        c = keras.ops.convert_to_numpy(conv(h))
        mean, var = (w.numpy() for w in norm.non_trainable_weights)
        y = (c - mean) / np.sqrt(var + norm.epsilon)  # no scale or shift of its own
        z = h + film(y, i)
    z = np.maximum(dense(layer.output_conv, coords(z)), 0)
    np.testing.assert_allclose(out, z.mean(axis=(1, 2)), rtol=1e-4, atol=1e-4)


def test_film_blocks_options_build_train_and_round_trip(tmp_path):
    model = mmzoo.build_model("classification", **OPTIONS, fusion="film", fusion_dim=8,
                              film_blocks=3, coord_channels=True, film_output_dim=12,
                              pooling="max", hidden_units=[16])
    layer = model.get_layer("fusion_film")
    assert layer.film_blocks == 3 and layer.output.shape == (None, 12)
    x, y = inputs(8), np.arange(8) % 3
    model.fit(x, y, epochs=1, verbose=0)
    expected = probabilities(model, x)
    model.save(tmp_path / "m.keras")
    again = keras.saving.load_model(tmp_path / "m.keras", safe_mode=True)
    np.testing.assert_allclose(probabilities(again, x), expected, rtol=1e-5, atol=1e-6)
    assert again.build_options["film_blocks"] == 3
    for option, value in (("film_blocks", 0), ("film_output_dim", 0), ("film_blocks", 1.5)):
        with pytest.raises(ValueError, match=rf"Received: {option}={value!r}"):
            mmzoo.build_model("classification", **OPTIONS, fusion="film", **{option: value})


def test_film_masking_with_several_blocks():
    model = mmzoo.build_model("classification", **OPTIONS, fusion="film", fusion_dim=8,
                              film_blocks=2, pooling="avg", modality_mask=True)
    randomize(model)
    x = inputs()
    ones = probabilities(model, {**x, "modality_mask": np.ones((4, 2), "float32")})
    plain = mmzoo.build_model("classification", **OPTIONS, fusion="film", fusion_dim=8,
                              film_blocks=2, pooling="avg")
    plain.set_weights(model.get_weights())
    np.testing.assert_allclose(ones, probabilities(plain, x), rtol=1e-5, atol=1e-6)
    # A missing text leaves the map unmodulated, whatever the text holds.
    mask = np.array([[1, 0]] * 4, "float32")
    a = probabilities(model, {**x, "modality_mask": mask})
    b = probabilities(model, {**x, "text": x["text"][::-1], "modality_mask": mask})
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_film_relation_readout_is_a_relation_network_over_the_modulated_map(tmp_path):
    model = mmzoo.build_model("classification", **OPTIONS, fusion="film", fusion_dim=8,
                              film_blocks=2, coord_channels=True, film_output_dim=12,
                              film_readout="relation", relation_layers=1, modality_mask=True)
    layer = model.get_layer("fusion_film")
    assert layer.output_conv is None and isinstance(layer.readout, RelationFusion)
    assert layer.readout.fusion_dim == 12 and layer.readout.relation_layers == 1
    assert layer.output.shape == (None, 12)
    # The readout is the relation network applied to the modulated map and
    # the condition: rebuild it from FiLM's own pieces.
    randomize(model)
    x = inputs()
    x["modality_mask"] = np.ones((4, 2), "float32")
    fmap = model.get_layer("image_convnet")(x["image"])
    cond = model.get_layer("text_gru")(x["text"])
    readout, layer.readout = layer.readout, None  # the modulated map, unpooled
    layer.pooling, layer.output_conv = "flatten", None
    z = keras.ops.reshape(layer([fmap, cond]), (4, 4, 4, 8))
    layer.readout = readout
    expected = readout([z, cond])
    np.testing.assert_allclose(layer([fmap, cond]), expected, rtol=1e-5, atol=1e-6)
    # Trains, saves and reloads; masking as FiLM's.
    y = np.arange(4) % 3
    model.fit(x, y, epochs=1, verbose=0)
    model.save(tmp_path / "m.keras")
    again = keras.saving.load_model(tmp_path / "m.keras", safe_mode=True)
    np.testing.assert_allclose(probabilities(again, x), probabilities(model, x),
                               rtol=1e-5, atol=1e-6)
    assert again.get_layer("fusion_film").get_config()["film_readout"] == "relation"
    mask = np.array([[1, 0]] * 4, "float32")
    a = probabilities(model, {**x, "modality_mask": mask})
    b = probabilities(model, {**x, "text": x["text"][::-1], "modality_mask": mask})
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    # The pooled readout keeps its old config (entries saved before it load unchanged).
    pooled = FiLMFusion(8, pooling="max").get_config()
    assert "film_readout" not in pooled and "relation_layers" not in pooled
    with pytest.raises(ValueError, match=r"Received: film_readout='rn'"):
        mmzoo.build_model("classification", **OPTIONS, fusion="film", film_readout="rn")


def test_film_spatial_softmax_readout_appends_where_each_channel_fires(tmp_path):
    kw = dict(fusion="film", fusion_dim=8, film_blocks=2, coord_channels=True,
              film_output_dim=12, pooling="max", modality_mask=True)
    model = mmzoo.build_model("classification", **OPTIONS, **kw, film_readout="spatial_softmax")
    layer = model.get_layer("fusion_film")
    assert layer.output.shape == (None, 36)  # 12 pooled, 12 rows, 12 columns
    # Its first 12 values are the pooled readout of the same weights.
    x = inputs()
    x["modality_mask"] = np.ones((4, 2), "float32")
    fmap = model.get_layer("image_convnet")(x["image"])
    cond = model.get_layer("text_gru")(x["text"])
    out = keras.ops.convert_to_numpy(layer([fmap, cond]))
    layer.film_readout = "pool"
    np.testing.assert_allclose(out[:, :12], layer([fmap, cond]), rtol=1e-6)
    layer.film_readout = "spatial_softmax"
    assert np.all(np.abs(out[:, 12:]) <= 1.0 + 1e-6)  # means of coordinates in [-1, 1]
    # A channel that fires at one cell reads that cell's row and column; a
    # silent channel reads the centre.
    z = np.zeros((1, 4, 4, 2), "float32")
    z[0, 1, 3, 0] = 50.0
    coords = keras.ops.convert_to_numpy(layer._expected_coordinates(keras.ops.convert_to_tensor(z)))
    np.testing.assert_allclose(coords[0], [-1 / 3, 0.0, 1.0, 0.0], atol=1e-5)
    # Trains, saves and reloads.
    model.fit(x, np.arange(4) % 3, epochs=1, verbose=0)
    model.save(tmp_path / "m.keras")
    again = keras.saving.load_model(tmp_path / "m.keras", safe_mode=True)
    np.testing.assert_allclose(probabilities(again, x), probabilities(model, x),
                               rtol=1e-5, atol=1e-6)
    assert again.get_layer("fusion_film").get_config()["film_readout"] == "spatial_softmax"
    with pytest.raises(ValueError, match=r"'avg' or 'max'. Received: pooling='flatten'"):
        FiLMFusion(8, pooling="flatten", film_readout="spatial_softmax")


# ---- relation network ---------------------------------------------------------

def test_relation_network_is_g_over_every_pair_then_f():
    fmap, q = RNG.normal(size=(2, 2, 3, 4)).astype("float32"), RNG.normal(size=(2, 5)).astype("float32")
    layer = RelationFusion(6, relation_layers=2)
    out = layer([fmap, q]).numpy()
    assert out.shape == (2, 6)
    grid = keras.ops.convert_to_numpy(AddCoordinates()(np.zeros((2, 2, 3, 0), "float32")))
    objects = np.concatenate([fmap, grid], -1).reshape(2, 6, 6)
    wa, ba = (w.numpy() for w in layer.g_first.weights)
    (wb,) = (w.numpy() for w in layer.g_second.weights)
    (wq,) = (w.numpy() for w in layer.g_question.weights)
    w2, b2 = (w.numpy() for w in layer.g_layers[0].weights)
    wf, bf = (w.numpy() for w in layer.f.weights)
    expected = []
    for n in range(2):
        total = 0
        for i, j in itertools.product(range(6), repeat=2):
            # g([o_i, o_j, q]) with one weight matrix over the concatenation
            w1 = np.concatenate([wa, wb, wq])
            h = np.maximum(np.concatenate([objects[n, i], objects[n, j], q[n]]) @ w1 + ba, 0)
            total = total + np.maximum(h @ w2 + b2, 0)
        expected.append(np.maximum((total / 36) @ wf + bf, 0))
    np.testing.assert_allclose(out, np.stack(expected), rtol=1e-4, atol=1e-5)


def test_relation_fusion_builds_trains_masks_and_round_trips(tmp_path):
    model = mmzoo.build_model("classification", **OPTIONS, fusion="relation", fusion_dim=8,
                              relation_layers=3, modality_mask=True)
    assert model.get_layer("image_convnet").output.shape == (None, 4, 4, 16)  # the cells
    assert model.get_layer("fusion_relation").output.shape == (None, 8)
    x, y = inputs(8), np.arange(8) % 3
    x["modality_mask"] = np.ones((8, 2), "float32")
    model.fit(x, y, epochs=1, verbose=0)
    expected = probabilities(model, x)
    model.save(tmp_path / "m.keras")
    again = keras.saving.load_model(tmp_path / "m.keras", safe_mode=True)
    np.testing.assert_allclose(probabilities(again, x), expected, rtol=1e-5, atol=1e-6)
    mask = np.array([[1, 0]] * 8, "float32")
    a = probabilities(model, {**x, "modality_mask": mask})
    b = probabilities(model, {**x, "text": x["text"][::-1], "modality_mask": mask})
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match=r"Received: relation_layers=0"):
        mmzoo.build_model("classification", **OPTIONS, fusion="relation", relation_layers=0)
    with pytest.raises(ValueError, match=r"needs the image feature map"):
        mmzoo.build_model("classification", **{**OPTIONS, "image_branch": "tfhub"},
                          image_handle="https://example.com/m", fusion="relation")


# ---- GRU text branch ----------------------------------------------------------

def test_gru_branch_reads_the_last_state_and_masks_padding():
    from mmzoo.branches import gru_branch

    short, long = gru_branch(4, vocab_size=30, text_units=5), gru_branch(7, vocab_size=30, text_units=5)
    long.set_weights(short.get_weights())
    ids = np.array([[5, 6, 7, 0]], "int32")
    a = keras.ops.convert_to_numpy(short(ids))
    b = keras.ops.convert_to_numpy(long(np.pad(ids, ((0, 0), (0, 3)))))
    assert a.shape == (1, 5)
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)  # trailing padding changes nothing


# ---- CNN text branch ----------------------------------------------------------

def test_cnn_text_branch_sees_phrases_within_its_receptive_field():
    from mmzoo.branches import cnn_text_branch

    branch = cnn_text_branch(10, vocab_size=30, embedding_dim=4, text_units=6, text_layers=2,
                             text_kernel_size=3)
    assert branch.output.shape == (None, 6)
    assert [l.name for l in branch.layers if "conv" in l.name] == ["text_cnn_conv1", "text_cnn_conv2"]
    randomize(branch, seed=1)
    ids = np.array([[3, 4, 5, 6, 7, 8, 9, 0, 0, 0]], "int32")
    base = keras.ops.convert_to_numpy(branch(ids))
    swapped = ids.copy()
    swapped[0, [0, 6]] = swapped[0, [6, 0]]
    assert not np.allclose(keras.ops.convert_to_numpy(branch(swapped)), base)  # word order counts
    with pytest.raises(ValueError, match=r"Received: text_layers=0"):
        mmzoo.build_model("classification", **{**OPTIONS, "text_branch": "cnn"}, text_layers=0)


# ---- Cross-attention (co-attention) -------------------------------------------

def test_cross_attention_gets_the_map_and_the_tokens_and_ignores_padding(tmp_path):
    """The text branch gives one vector per token; padding takes no part anywhere."""
    options = {**OPTIONS, "fusion": "cross_attention", "fusion_dim": 8, "attention_heads": 2}
    model = mmzoo.build_model("classification", **options)
    assert model.get_layer("text_gru").output.shape == (None, 6, 8)      # per token
    assert model.get_layer("image_convnet").output.shape == (None, 4, 4, 16)  # the cells
    assert model.get_layer("fusion_cross_attention").output.shape == (None, 8)
    longer = mmzoo.build_model("classification", **{**options, "sequence_length": 9})
    randomize(model, seed=2)
    longer.set_weights(model.get_weights())
    x = inputs(4)
    x["text"][:, 4:] = 0  # two real tokens fewer, padded
    padded = {**x, "text": np.pad(x["text"], ((0, 0), (0, 3)))}
    np.testing.assert_allclose(probabilities(longer, padded), probabilities(model, x),
                               rtol=1e-5, atol=1e-6)
    changed = {**x, "text": x["text"].copy()}
    changed["text"][:, 1] = (changed["text"][:, 1] % 29) + 1  # one real token differs
    assert not np.allclose(probabilities(model, changed), probabilities(model, x), atol=1e-5)
    model.fit(x, np.arange(4) % 3, epochs=1, verbose=0)
    expected = probabilities(model, x)
    model.save(tmp_path / "m.keras")
    again = keras.saving.load_model(tmp_path / "m.keras", safe_mode=True)
    np.testing.assert_allclose(probabilities(again, x), expected, rtol=1e-5, atol=1e-6)


def test_cross_attention_layer_masks_tokens_and_takes_vectors_as_one_token():
    from mmzoo.fusion import CrossAttentionFusion

    fmap = RNG.normal(size=(3, 2, 3, 5)).astype("float32")
    tokens = RNG.normal(size=(3, 4, 6)).astype("float32")
    vector = RNG.normal(size=(3, 6)).astype("float32")
    mask = np.array([[1, 1, 0, 0], [1, 1, 1, 1], [1, 0, 0, 0]], bool)
    layer = CrossAttentionFusion(8, attention_layers=2, attention_heads=2)
    out = keras.ops.convert_to_numpy(layer([fmap, tokens], mask=[None, mask]))
    assert out.shape == (3, 8)
    garbage = np.where(mask[..., None], tokens, 1e3).astype("float32")
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(layer([fmap, garbage], mask=[None, mask])), out,
        rtol=1e-5, atol=1e-5)
    # A vector is one token: the same as a sequence of length one.
    both = CrossAttentionFusion(8, attention_heads=2)
    one = keras.ops.convert_to_numpy(both([fmap, vector]))
    np.testing.assert_allclose(keras.ops.convert_to_numpy(both([fmap, vector[:, None, :]])), one,
                               rtol=1e-6, atol=1e-6)
    # Cells carry their coordinates: the same features at other places give another answer.
    moved = np.roll(fmap, 1, axis=2)
    assert not np.allclose(keras.ops.convert_to_numpy(both([moved, vector])), one, atol=1e-5)
    with pytest.raises(ValueError, match=r"divisible by `attention_heads`.*fusion_dim=10"):
        CrossAttentionFusion(10, attention_heads=4)
    with pytest.raises(ValueError, match=r"Received: attention_layers=0"):
        mmzoo.build_model("classification", **OPTIONS, fusion="cross_attention",
                          attention_layers=0)
    with pytest.raises(ValueError, match=r"needs the image feature map"):
        mmzoo.build_model("classification", **{**OPTIONS, "image_branch": "tfhub"},
                          image_handle="https://example.com/m", fusion="cross_attention")


def test_cnn_text_projection_gives_signed_bounded_features():
    """A GRU's state is in (-1, 1); the pooled ReLU features are >= 0 (a student of a GRU needs tanh)."""
    from mmzoo.branches import cnn_text_branch

    ids = RNG.integers(1, 30, (16, 10)).astype("int32")
    plain = cnn_text_branch(10, vocab_size=30, embedding_dim=4, text_units=6)
    assert keras.ops.convert_to_numpy(plain(ids)).min() >= 0
    tanh = cnn_text_branch(10, vocab_size=30, embedding_dim=4, text_units=6,
                           text_projection="tanh")
    assert tanh.get_layer("text_cnn_projection").output.shape == (None, 6)
    randomize(tanh, seed=3)
    out = keras.ops.convert_to_numpy(tanh(ids))
    assert out.min() < 0 < out.max() and np.abs(out).max() < 1
