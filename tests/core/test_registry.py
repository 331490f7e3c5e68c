"""Adding the answer writer to a loaded set keeps the set one release."""

from assistant.core.registry import Models
from assistant.lifecycle.releases import promote
from tests.fakes import WITH_WRITER, fake_settings
from tests.lifecycle.test_releases import make_live, saved


def test_the_writer_joins_the_release_its_set_was_loaded_from(demo_slice):
    settings = fake_settings(demo_slice, generator_enabled=True, components=WITH_WRITER)
    first = saved(settings, "a")
    make_live(settings, first)
    encoders = Models.load(settings, writer=False)
    assert encoders.generator is None

    models = encoders.with_writer(settings)
    assert models.versions == first
    assert models.classifier is encoders.classifier  # only the writer was loaded
    assert models.router.policy.generation_threshold is not None


def test_a_release_promoted_meanwhile_is_loaded_whole(demo_slice):
    settings = fake_settings(demo_slice, generator_enabled=True, components=WITH_WRITER)
    make_live(settings, saved(settings, "a"))
    encoders = Models.load(settings, writer=False)
    second = saved(settings, "b")
    promote(settings, second, None, "retrain")

    assert encoders.with_writer(settings).versions == second
