"""Record what CellProfiler 4.2.8's own measurement modules give on the degenerate test cases.

Runs the unmodified MeasureTexture, MeasureObjectIntensity, MeasureGranularity,
MeasureObjectSizeShape, MeasureObjectIntensityDistribution, MeasureColocalization,
MeasureObjectNeighbors and MeasureImageQuality modules (CPJUMP1 settings) on every case of
``tests/measure/cases.py``, through a real Pipeline / ImageSet / ObjectSet / Measurements
workspace, and writes ``tests/measure/data/cellprofiler428_cases.npz``: per ``<case>/<family>``
a float64 table (rows = objects 1..N, or one row for the Image table) and the JSON list of its
CellProfiler feature names and their lengths (``<case>/<family>/objects`` and ``/image``,
``..._names``, ``..._lengths``: some modules store one value per present object), and
``checksum`` (of the inputs) and ``versions``.

It needs an environment of its own, CellProfiler's pins under Python 3.9 (scipy 1.9.0 and
scikit-image 0.18.3 have no wheels for newer Pythons), from PyPI::

    python3.9 -m venv cp428 && cp428/bin/pip install numpy==1.23.5 scipy==1.9.0 scikit-image==0.18.3 \\
        centrosome==1.2.3 mahotas==1.4.18 "h5py~=3.6.0" docutils==0.15.2 boto3 psutil pyzmq "inflect<7" \\
        Jinja2 joblib "scikit-learn<1" future
    cp428/bin/pip install --no-deps cellprofiler==4.2.8 cellprofiler-core==4.2.8
    cp428/bin/python tools/cellprofiler_cases.py

(javabridge and bioformats, which the measurement modules import but never call, are given
empty stand-ins here; nothing Java runs.)
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import warnings
from pathlib import Path

import numpy

ROOT = Path(__file__).resolve().parents[1]
IMG, OBJ = "img", "obj"


_STUB = """
class _Anything:
    \"\"\"Stands in for any Java-side name: callable, subclassable, attribute access.\"\"\"
    def __init__(self, *args, **kwargs):
        pass
    def __call__(self, *args, **kwargs):
        return _Anything()
    def __getattr__(self, name):
        return _Anything()
class JavaException(Exception):
    pass
PT_UINT8, PT_UINT16, PT_UINT = "uint8", "uint16", "uint"
def __getattr__(name):
    return _Anything
"""


def _stubs() -> str:
    """Import-only stand-ins for the Java bridges cellprofiler_core imports (never called here)."""
    folder = tempfile.mkdtemp(prefix="cp428_stubs_")
    for package, modules in (("javabridge", ("jutil", "locate")), ("bioformats", ("formatreader", "formatwriter",
                                                                                  "omexml"))):
        os.makedirs(os.path.join(folder, package))
        for module in ("__init__", *modules):
            with open(os.path.join(folder, package, f"{module}.py"), "w") as fh:
                fh.write(_STUB)
    return folder


def _workspace(module, images, labels, discarded=None):
    import cellprofiler_core.image as cpi
    import cellprofiler_core.measurement as cpmeas
    import cellprofiler_core.object as cpo
    import cellprofiler_core.pipeline as cpp
    import cellprofiler_core.workspace as cpw

    pipeline = cpp.Pipeline()
    module.set_module_num(1)
    pipeline.add_module(module)
    objects = cpo.ObjectSet()
    image_sets = cpi.ImageSetList()
    image_set = image_sets.get_image_set(0)
    measurements = cpmeas.Measurements()
    for name, pixels in images.items():
        image_set.add(name, cpi.Image(pixels, convert=True, dimensions=2))
    if labels is not None:
        o = cpo.Objects()
        o.segmented = labels
        if discarded is not None:
            o.small_removed_segmented = discarded
        objects.add_objects(o, OBJ)
    return cpw.Workspace(pipeline, module, image_set, objects, measurements, image_sets), measurements


def _read(measurements, prefixes, out):
    for obj in (OBJ, "Image"):
        if obj not in measurements.get_object_names():
            continue
        for feature in measurements.get_feature_names(obj):
            if feature.startswith(prefixes):
                value = measurements.get_current_measurement(obj, feature)
                out[feature if obj == OBJ else f"Image:{feature}"] = numpy.atleast_1d(numpy.asarray(value, float))
    return out


def measure(family: str, labels, image, image2) -> dict:
    """CellProfiler's measurements of one case by one module, CPJUMP1's settings."""
    from cellprofiler.modules import (measurecolocalization, measuregranularity, measureimagequality,
                                      measureobjectintensity, measureobjectintensitydistribution,
                                      measureobjectneighbors, measureobjectsizeshape, measuretexture)

    out = {}
    if family == "texture":
        m = measuretexture.MeasureTexture()
        m.images_list.value, m.objects_list.value, m.gray_levels.value = IMG, OBJ, 256
        m.images_or_objects.value = measuretexture.IO_BOTH
        m.scale_groups[0].scale.value = 3
        for s in (5, 10):
            m.add_scale()
            m.scale_groups[-1].scale.value = s
        prefixes = ("Texture_",)
    elif family == "intensity":
        m = measureobjectintensity.MeasureObjectIntensity()
        m.images_list.value, m.objects_list.value = IMG, OBJ
        prefixes = ("Intensity_", "Location_")
    elif family == "granularity":
        m = measuregranularity.MeasureGranularity()
        m.images_list.value, m.wants_objects.value, m.objects_list.value = IMG, True, OBJ
        m.subsample_size.value, m.image_sample_size.value = 0.5, 0.5
        m.element_size.value, m.granular_spectrum_length.value = 10, 16
        prefixes = ("Granularity_",)
    elif family == "sizeshape":
        m = measureobjectsizeshape.MeasureObjectSizeShape()
        m.objects_list.value, m.calculate_zernikes.value, m.calculate_advanced.value = OBJ, True, False
        prefixes = ("AreaShape_",)
    elif family == "radial":
        r = measureobjectintensitydistribution
        m = r.MeasureObjectIntensityDistribution()
        m.images_list.value = IMG
        m.objects[0].object_name.value, m.objects[0].center_choice.value = OBJ, r.C_SELF
        m.bin_counts[0].bin_count.value, m.bin_counts[0].wants_scaled.value = 4, True
        m.bin_counts[0].maximum_radius.value = 100
        m.wants_zernikes.value = r.Z_NONE
        prefixes = ("RadialDistribution_",)
    elif family == "colocalization":
        c = measurecolocalization
        m = c.MeasureColocalization()
        m.images_list.value, m.objects_list.value, m.images_or_objects.value = "A, B", OBJ, c.M_OBJECTS
        m.thr.value, m.do_all.value = 15.0, False
        m.do_corr_and_slope.value = m.do_manders.value = m.do_rwc.value = m.do_overlap.value = True
        m.do_costes.value = False
        ws, meas = _workspace(m, {"A": image, "B": image2}, labels)
        m.run(ws)
        return _read(meas, ("Correlation_",), out)
    elif family == "neighbors":
        n = measureobjectneighbors
        for item in (5, 1, "adjacent"):
            m = n.MeasureObjectNeighbors()
            m.object_name.value = m.neighbors_name.value = OBJ
            if item == "adjacent":
                m.distance_method.value = n.D_ADJACENT
            else:
                m.distance_method.value, m.distance.value = n.D_WITHIN, item
            m.wants_excluded_objects.value = True
            m.wants_count_image.value = m.wants_percent_touching_image.value = False
            ws, meas = _workspace(m, {}, labels)
            m.run(ws)
            _read(meas, ("Neighbors_",), out)
        return out
    elif family == "imagequality":
        q = measureimagequality
        m = q.MeasureImageQuality()
        m.images_choice.value = q.O_SELECT
        g = m.image_groups[0]
        g.image_names.value = IMG
        g.include_image_scalings.value = g.check_blur.value = g.include_local_blur.value = True
        g.scale_groups[0].scale.value = 5
        for s in (10, 20, 50):
            m.add_scale_group(g)
            g.scale_groups[-1].scale.value = s
        g.check_saturation.value = g.check_intensity.value = True
        g.calculate_threshold.value = False
        ws, meas = _workspace(m, {IMG: image}, None)
        m.run(ws)
        return _read(meas, ("ImageQuality_",), out)
    else:
        raise ValueError(family)
    ws, meas = _workspace(m, {IMG: image}, labels)
    m.run(ws)
    return _read(meas, prefixes, out)


FAMILIES = ("texture", "intensity", "granularity", "sizeshape", "radial", "colocalization", "neighbors",
            "imagequality")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "tests" / "measure" / "data" / "cellprofiler428_cases.npz")
    args = parser.parse_args()
    sys.path.insert(0, _stubs())
    sys.path.insert(0, str(ROOT / "tests" / "measure"))
    warnings.filterwarnings("ignore")
    import cellprofiler
    import cellprofiler_core.preferences

    cellprofiler_core.preferences.set_headless()
    import cases

    built = cases.build()
    arrays = {"checksum": numpy.array(cases.checksum(built), numpy.int64),
              "versions": numpy.array(json.dumps({"cellprofiler": cellprofiler.__version__,
                                                  "numpy": numpy.__version__}))}
    for name, case in built.items():
        for family in FAMILIES:
            values = measure(family, case["labels"], case["image"], case["image2"])
            for kind, names in (("objects", [k for k in values if not k.startswith("Image:")]),
                                ("image", [k for k in values if k.startswith("Image:")])):
                if names:
                    rows = max(len(values[k]) for k in names)
                    table = numpy.full((rows, len(names)), numpy.nan)
                    for j, k in enumerate(names):
                        table[:len(values[k]), j] = values[k]
                    arrays[f"{name}/{family}/{kind}"] = table
                    arrays[f"{name}/{family}/{kind}_names"] = numpy.array(json.dumps(
                        [k[len("Image:"):] if kind == "image" else k for k in names]))
                    arrays[f"{name}/{family}/{kind}_lengths"] = numpy.array([len(values[k]) for k in names])
        print(name, flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    numpy.savez_compressed(args.out, **arrays)
    print(f"{len(arrays)} arrays -> {args.out}")


if __name__ == "__main__":
    main()
