"""Profiles and scores: single cells -> well profiles -> Percent Replicating / Matching, mAP.

One verb per module, pycytominer's semantics and CPJUMP1's settings as defaults;
every verb takes a DataFrame or the path of a CSV / Parquet table (``aggregate``
also a run's store).

- :func:`profile_plates` many plates: per plate aggregate, annotate, normalize; one feature selection
- :func:`write_plate_profiles` ``profile_plates`` and its files: profiles, kept features, consensus, stages
- :func:`aggregate` single cells (store or table) to per-well medians with ``Metadata_Object_Count``
- :func:`annotate` join plate maps and perturbation metadata
- :func:`normalize` per-plate ``mad_robustize`` / ``standardize`` / ``robustize`` / ``spherize``, optionally to controls
- :func:`spherize` ZCA / PCA whitening (covariance or correlation) fitted on controls, per plate or group
- :func:`feature_select` variance / frequency / correlation / NaN / blocklist / outlier filters
- :func:`consensus` replicates to one signature per perturbation: median, mean or MODZ
- :func:`percent_replicating`, :func:`percent_matching` correlation scores against seeded nulls
- :func:`average_precision`, :func:`mean_average_precision` copairs' mAP with p-values and FDR
- :func:`combine_tables`, :func:`join_plate_metadata` several tables (renamed, tagged) and plate metadata -> one
- :func:`score_tables` every score of profile tables, once or per group of plates (``cpfeatures score``)
"""

from ._frames import check_profiles_path, infer_features, load_profiles, metadata_columns, select_rows, write_profiles
from .aggregate import aggregate
from .annotate import annotate, canonical_well, platemap_by_well, read_platemap
from .batch import PlateProfiles, profile_plates, read_feature_list, read_jump_platemaps
from .average_precision import average_precision, fdr_bh, mean_average_precision
from .blocklist import default_blocklist
from .combine import combine_tables, join_plate_metadata
from .consensus import consensus
from .feature_select import CPJUMP1_OPERATIONS, OPERATIONS, feature_select
from .normalize import normalize
from .replicating import MatchingResult, ReplicatingResult, percent_matching, percent_replicating
from .score_tables import SCORE_TABLES, WARNINGS_FILE, Scores, nested_groups, score_tables
from .spherize import spherize
from .write import write_plate_profiles

__all__ = ["profile_plates", "read_jump_platemaps", "PlateProfiles", "aggregate", "annotate", "normalize", "spherize",
           "feature_select", "consensus", "percent_replicating",
           "percent_matching", "average_precision", "mean_average_precision", "fdr_bh", "default_blocklist",
           "canonical_well", "read_platemap", "infer_features", "load_profiles", "metadata_columns", "write_profiles",
           "check_profiles_path", "OPERATIONS", "CPJUMP1_OPERATIONS", "ReplicatingResult", "MatchingResult",
           "select_rows", "platemap_by_well", "score_tables", "Scores", "SCORE_TABLES", "WARNINGS_FILE", "nested_groups", "combine_tables",
           "join_plate_metadata", "write_plate_profiles", "read_feature_list"]
