"""Score tables as the report reads them: the score step's files, result objects, folders."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from cpfeatures.errors import InputError
from cpfeatures.profile import percent_replicating
from cpfeatures.report.scores import score_tables


def test_folder_of_score_files_in_the_score_steps_order(tmp_path):
    pd.DataFrame({"g": ["a"], "n_profiles": [2], "mean_average_precision": [0.5], "corrected_p_value": [0.1]}
                 ).to_csv(tmp_path / "map.csv", index=False)
    pd.DataFrame({"g": ["a", "b"], "n_replicates": [2, 2], "median_correlation": [0.9, 0.1],
                  "null_threshold": [0.3, 0.3], "above_null": [True, False]}
                 ).to_csv(tmp_path / "percent_replicating.csv", index=False)
    tables = score_tables(tmp_path)
    assert [t.name for t in tables] == ["Percent Replicating", "mAP"]
    assert [t.kind for t in tables] == ["correlation", "map"]
    assert tables[0].threshold == 0.3 and tables[0].percent_above_null() == 50.0
    with pytest.raises(InputError, match="no score tables"):
        score_tables(tmp_path / "empty" if (tmp_path / "empty").mkdir() is None else None)


def test_replicating_result_null_is_pooled():
    rng = np.random.default_rng(1)
    frame = pd.DataFrame(rng.normal(size=(18, 6)), columns=[f"Cells_F{i}" for i in range(6)])
    frame.insert(0, "Metadata_g", [f"g{i // 3}" for i in range(15)] + ["h0", "h0", "h1"])  # sizes 3 and 2
    rep = percent_replicating(frame, "Metadata_g", n_samples=50)
    (table,) = score_tables(rep)
    assert table.name == "Percent Replicating" and table.kind == "correlation"
    assert table.null.size == sum(v.size for v in rep.null.values()) == 100
    assert table.threshold == rep.null_p95
    assert table.percent_above_null() == pytest.approx(rep.percent_replicating)
