"""The bridge from settings to the engine configuration."""

from analysis.analyzer import engine_config


def test_the_fast_engine_settings_reach_the_engine(settings, tmp_path):
    settings.ANALYZER_ENGINE = "reference"
    settings.ANALYZER_JUMP_FORWARD = False
    settings.ANALYZER_CUDA_GRAPHS = False
    settings.ANALYZER_PREFIX_CACHE = False
    settings.ANALYZER_CONTEXT_TOKENS = 2048
    settings.ANALYZER_GRAMMAR_CACHE_DIR = tmp_path
    config = engine_config()
    assert (config.engine, config.jump_forward, config.cuda_graphs, config.prefix_cache) == (
        "reference", False, False, False)
    assert config.context_tokens == 2048 and config.grammar_cache_dir == str(tmp_path)


def test_context_tokens_0_means_the_models_window(settings):
    settings.ANALYZER_CONTEXT_TOKENS = 0
    assert engine_config().context_tokens is None
