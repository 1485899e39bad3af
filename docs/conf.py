"""Sphinx configuration for specgenre's documentation.

Build with ``nox -s docs`` (warnings are errors). The API reference
(``api.rst``) is generated at build time from :data:`API_SECTIONS` below, so
that it documents every public name of ``specgenre.__all__``; see
:func:`write_api_page`.
"""

import importlib
import inspect
import os
import re
from pathlib import Path

import specgenre

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent

# -- project -----------------------------------------------------------------

project = "specgenre"
author = "specgenre developers"
copyright = "specgenre developers"
release = specgenre.__version__
version = ".".join(release.split(".")[:2])

# -- general -----------------------------------------------------------------

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.viewcode",
    "numpydoc",
    "sphinx_gallery.gen_gallery",
]
templates_path = ["_templates"]
exclude_patterns = ["_build", "Thumbs.db", ".DS_Store", "**.ipynb_checkpoints"]
default_role = "py:obj"  # `name` links to a Python object
# no intersphinx: the build must work offline; other projects' pages are
# linked with plain URLs where it helps

autosummary_generate = True
autosummary_imported_members = True
autodoc_default_options = {"members": True, "inherited-members": True}
autodoc_typehints = "none"  # types are in the numpydoc "Parameters" sections

numpydoc_show_class_members = False  # the class template lists the members
numpydoc_class_members_toctree = False
# types become :obj: links (unresolved ones stay plain code, without warning);
# this also keeps names like ``n_segments_`` in types from being read as
# reST link targets
numpydoc_xref_param_type = True
numpydoc_xref_ignore = {"of", "shape", "or", "and", "default", "optional", "like", "dtype"}
# numpydoc's default aliases point at the Python and NumPy docs through
# intersphinx (e.g. ":class:`python:int`"), which is not available offline:
# they would render as "python:int" or warn. Map them to plain names instead.
numpydoc_xref_aliases = {
    **{name: name for name in ("None", "True", "False", "list", "tuple", "str", "dict",
                               "float", "int", "bool", "callable", "numpy")},
    "string": "str",
    "boolean": "bool",
    "iterable": "collections.abc.Iterable",
    "sequence": "collections.abc.Sequence",
    "generator": "collections.abc.Generator",
    "contextmanager": "contextlib.contextmanager",
    "namedtuple": "collections.namedtuple",
    "array-like": "numpy.typing.ArrayLike",
    "array_like": "numpy.typing.ArrayLike",
    "scalar": "numpy.generic",
    "np.inf": "numpy.inf",
    "np.nan": "numpy.nan",
}

# -- HTML --------------------------------------------------------------------

html_theme = "pydata_sphinx_theme"
html_title = f"specgenre {release}"
html_theme_options = {
    "navigation_with_keys": False,
    "show_toc_level": 2,
    "secondary_sidebar_items": ["page-toc"],
}
html_show_sourcelink = False

# -- example gallery (examples/ is run at build time) -------------------------

sphinx_gallery_conf = {
    "examples_dirs": str(ROOT / "examples"),
    "gallery_dirs": "auto_examples",
    "filename_pattern": r"/plot_",
    "within_subsection_order": "FileNameSortKey",
    "doc_module": ("specgenre",),
    "backreferences_dir": "gen_modules/backreferences",
    "abort_on_example_error": True,  # a failing example fails the build
    "remove_config_comments": True,
    "download_all_examples": False,
    "min_reported_time": 1,
}

# -- API reference -------------------------------------------------------------

#: Sections of the API page, in order: title -> public names of ``specgenre``.
#: Every name of ``specgenre.__all__`` (except ``__version__``) must appear in
#: exactly one section, and its submodule must define it; the build fails otherwise.
API_SECTIONS = {
    "Your music: collections, training, model files, judging songs": [
        "load_collection",
        "Collection",
        "Waveforms",
        "train_row",
        "TrainedModel",
        "save_model",
        "load_model",
        "judge_files",
        "judge",
        "Judgement",
    ],
    "Collections of any size: block by block, resumable, on a Dask cluster": [
        "write_feature_table_files",
        "predict_files",
        "write_tag_table",
        "write_embedding_table",
        "map_file_blocks",
    ],
    "Evaluation": [
        "evaluate_rows",
        "evaluate_row",
        "format_table",
        "write_results",
    ],
    "Data sets": [
        "load_audio_folder",
        "load_gtzan",
        "load_audio_csv",
        "load_gtzan_features",
        "make_genre_clips",
        "GENRES",
    ],
    "Audio and spectrograms": [
        "AudioLoader",
        "load_audio",
        "read_audio",
        "AudioLoadError",
        "ClipSegmenter",
        "SpectrogramTransformer",
        "BandStatistics",
        "FeatureExtractor",
    ],
    "Classifiers": [
        "CNNClassifier",
        "ResNet18Classifier",
        "PretrainedWeightsNotFoundError",
        "XGBoostClassifier",
        "TrackAggregator",
        "group_segments",
    ],
    "The study's rows": [
        "STUDY_ROWS",
        "BEYOND_ROWS",
        "ALL_ROWS",
        "RECOMMENDED_ROW",
        "select_rows",
        "make_row",
    ],
    "Transfer from musicnn (pretrained on music)": [
        "MusicnnEmbedding",
        "top_tags",
        "MusicnnClassifier",
        "MusicnnPatches",
    ],
    "Exploration and plots": [
        "similar_tracks",
        "plot_confusion_matrix",
        "plot_spectrogram_examples",
        "plot_embedding_map",
    ],
}

API_HEADER = """\
.. Generated by docs/conf.py from API_SECTIONS at build time: edit conf.py, not this file.

.. _api:

=============
API reference
=============

Every public name is importable from the package itself, e.g.
``from specgenre import ClipSegmenter``. Estimators follow the
`scikit-learn estimator API <https://scikit-learn.org/stable/developers/develop.html>`__:
they can be cloned, grid-searched and put in a pipeline.
"""


def _api_entry(name):
    """The autosummary entry for public ``name``; fails if its submodule lacks it."""
    module = specgenre._LAZY[name]
    if not hasattr(importlib.import_module(f"specgenre.{module}"), name):
        raise RuntimeError(f"specgenre.{name} is public but specgenre.{module} does not define it")
    obj = getattr(specgenre, name)
    if inspect.isclass(obj) or inspect.isroutine(obj):
        return name
    # data: document it where it is defined, so that its ``#:`` comment is found
    return f"~{module}.{name}"


def write_api_page(path=DOCS / "api.rst"):
    """Write the API page from API_SECTIONS."""
    public = sorted(set(specgenre.__all__) - {"__version__"})
    listed = [name for names in API_SECTIONS.values() for name in names]
    unknown = sorted(set(listed) - set(public))
    unlisted = sorted(set(public) - set(listed))
    duplicated = sorted({name for name in listed if listed.count(name) > 1})
    if unknown or unlisted or duplicated:
        raise RuntimeError(
            "docs/conf.py API_SECTIONS is out of step with specgenre.__all__: "
            f"not public: {unknown}; missing: {unlisted}; listed twice: {duplicated}. "
            "List every public name in exactly one section of API_SECTIONS."
        )
    lines = [API_HEADER]
    for title, names in API_SECTIONS.items():
        entries = [_api_entry(name) for name in names]
        lines += [title, "=" * len(title), "", ".. currentmodule:: specgenre", "",
                  ".. autosummary::", "   :toctree: generated/", "   :nosignatures:", ""]
        lines += [f"   {entry}" for entry in entries]
        lines.append("")
    text = "\n".join(lines)
    if not path.exists() or path.read_text() != text:
        path.write_text(text)


write_api_page()


def _skip_foreign_members(app, what, name, obj, skip, options):
    """Document only members written in specgenre, not those inherited from
    scikit-learn, skorch, ... (e.g. ``get_params``, ``set_fit_request``):
    their docstrings refer to their own projects' pages."""
    target = getattr(obj, "fget", None) or getattr(obj, "__func__", None) or obj
    module = getattr(target, "__module__", None)
    if (inspect.isroutine(target) or inspect.isclass(target)) and isinstance(module, str):
        if module != "specgenre" and not module.startswith("specgenre."):
            return True
    return None


# a numpydoc "name : type" line, and a fitted-attribute name inside its type
_PARAM_LINE = re.compile(r"^(\s*[\w*][\w*, ]* : )(.*)$")
_TRAILING_UNDERSCORE = re.compile(r"(?<![`\w])([A-Za-z_]\w*_)(?![`\w])")


def _quote_fitted_names_in_types(app, what, name, obj, options, lines):
    """Write ``(n_features_in_,)`` in a type as ``(`n_features_in_`,)``.

    numpydoc leaves a token such as ``n_features_in_,`` as it is, and reST
    then reads ``n_features_in_`` as a link to a target that does not exist.
    scikit-learn quotes such names by hand; this does it for every type line.
    """
    for i, line in enumerate(lines):
        match = _PARAM_LINE.match(line)
        if match and "`" not in match.group(2):
            lines[i] = match.group(1) + _TRAILING_UNDERSCORE.sub(r"`\1`", match.group(2))


def setup(app):
    app.connect("autodoc-skip-member", _skip_foreign_members)
    # before numpydoc (priority 500) parses the docstring
    app.connect("autodoc-process-docstring", _quote_fitted_names_in_types, priority=400)


# examples run inside the build: keep Matplotlib headless
os.environ.setdefault("MPLBACKEND", "Agg")
