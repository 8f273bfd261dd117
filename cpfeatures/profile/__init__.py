"""Profiles and scores: single cells -> well profiles -> Percent Replicating / Matching, mAP.

One verb per module, pycytominer's semantics and CPJUMP1's settings as defaults;
every verb takes a DataFrame or the path of a CSV / Parquet table (``aggregate``
also a run's store).

- :func:`profile_plates` many plates: per plate aggregate, annotate, normalize; one feature selection
- :func:`aggregate` single cells (store or table) to per-well medians with ``Metadata_Object_Count``
- :func:`annotate` join plate maps and perturbation metadata
- :func:`normalize` per-plate ``mad_robustize`` / ``standardize`` / ``robustize`` / ``spherize``, optionally to controls
- :func:`spherize` ZCA / PCA whitening (covariance or correlation) fitted on controls, per plate or group
- :func:`feature_select` variance / frequency / correlation / NaN / blocklist / outlier filters
- :func:`consensus` replicates to one signature per perturbation: median, mean or MODZ
- :func:`percent_replicating`, :func:`percent_matching` correlation scores against seeded nulls
- :func:`average_precision`, :func:`mean_average_precision` copairs' mAP with p-values and FDR
"""

from ._frames import check_profiles_path, infer_features, load_profiles, metadata_columns, select_rows, write_profiles
from ._score_tables import score_tables
from .aggregate import aggregate
from .annotate import annotate, canonical_well, read_platemap
from .batch import PlateProfiles, profile_plates, read_jump_platemaps
from .average_precision import average_precision, fdr_bh, mean_average_precision
from .blocklist import default_blocklist
from .consensus import consensus
from .feature_select import CPJUMP1_OPERATIONS, OPERATIONS, feature_select
from .normalize import normalize
from .replicating import MatchingResult, ReplicatingResult, percent_matching, percent_replicating
from .spherize import spherize

__all__ = ["profile_plates", "read_jump_platemaps", "PlateProfiles", "aggregate", "annotate", "normalize", "spherize",
           "feature_select", "consensus", "percent_replicating",
           "percent_matching", "average_precision", "mean_average_precision", "fdr_bh", "default_blocklist",
           "canonical_well", "read_platemap", "infer_features", "load_profiles", "metadata_columns", "write_profiles",
           "check_profiles_path", "OPERATIONS", "CPJUMP1_OPERATIONS", "ReplicatingResult", "MatchingResult",
           "select_rows", "score_tables"]
