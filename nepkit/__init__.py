"""nepkit: NEP change and restoration potential of mining areas.

A library for the compendium of Chen F. et al. (2025), "Assessment of carbon
sequestration potential for ecological restoration of mining areas in the Belt and
Road countries", J. China Coal Soc. 50(6): 2789-2801. One module per stage:

``regions``
    BRI membership, continent and subregion; region selectors.
``params``
    The typed, validated run parameters shared by notebooks and the CLI.
``synth`` / ``sources``
    The embedded synthetic world and the real-data manifest (``sources.yml``).
``extract``
    Coverage-weighted NEP of mines and reference rings; the 11 indicators.
``nepchange``
    The paper's equations 1-4, totals, phases, losses and gains.
``potential``
    Yeo-Johnson + random forest; attainable gain and restoration potential.
``drivers``
    Conditional permutation importance, permutation importance, SHAP.
``scenarios``
    Restoration strategies projected into cumulative sequestration.
``plotting``
    The paper's figures, with offline cartopy maps.

Units: NEP per area in g C m-2 a-1; totals in Gg C (1 Gg = 1e9 g).
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("nepkit")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0.0.0"

__all__ = ["__version__"]
