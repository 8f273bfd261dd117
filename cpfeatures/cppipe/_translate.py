"""A CellProfiler pipeline's modules -> cpfeatures settings, refusing what would change the numbers.

Each enabled module is one of:

- **translated**: cpfeatures implements it; its settings become TOML keys;
- **not needed**: it only loads, saves, displays or exports (the plate readers and the
  store replace it), or it makes an image nothing numeric uses;
- **unsupported**: it (or one of its settings) changes the numbers and cpfeatures does
  not implement it. These are listed one per line, module number, name, setting, value.

Images are followed through the pipeline by name: ``OrigDNA`` loaded -> ``PreDNA``
illumination-corrected -> ``DNA`` clipped is the role ``DNA`` as cpfeatures measures it.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field, replace

from ..config import default_config
from ._parse import Module, PipelineError, printable

__all__ = ["Finding", "translate"]

#: Modules that only load, save, display or export: the plate readers and the store replace them.
NOT_NEEDED = {
    "LoadData": "the plate (a LoadData CSV is read by `cpfeatures run load_data.csv`)",
    "Images": "the plate readers list the images", "Metadata": "the plate readers read well, site and channel",
    "Groups": "a run processes every site; illumination functions are per plate",
    "SaveImages": "the store keeps what a run makes", "OverlayOutlines": "display only (see `cpfeatures overlay`)",
    "ExportToSpreadsheet": "the store replaces it (`cpfeatures export`)",
    "ExportToDatabase": "the store replaces it (`cpfeatures export`)", "CreateBatchFiles": "dask runs the batch",
    "GrayToColor": "display only", "DisplayDataOnImage": "display only", "DisplayDensityPlot": "display only",
    "DisplayHistogram": "display only", "DisplayPlatemap": "display only", "DisplayScatterPlot": "display only",
    "ConvertObjectsToImage": "display only (`cpfeatures run --save-labels` keeps the label images)",
    "NamesAndTypes": "channel names -> roles ([channels])", "FlagImage": "flags only, skips nothing",
}
_MEASURE_FAMILIES = {
    "MeasureObjectIntensity": "intensity", "MeasureTexture": "texture", "MeasureGranularity": "granularity",
    "MeasureColocalization": "colocalization", "MeasureObjectSizeShape": "sizeshape",
    "MeasureObjectIntensityDistribution": "radial", "MeasureObjectNeighbors": "neighbors",
}
ALL_FAMILIES = ("intensity", "texture", "granularity", "colocalization", "sizeshape", "radial", "neighbors")
_THRESHOLD_METHODS = {"minimum cross-entropy": "minimum_cross_entropy",
                      "minimum cross entropy": "minimum_cross_entropy", "mce": "minimum_cross_entropy", "otsu": "otsu"}
_SECONDARY = {"watershed - image": "watershed_image", "propagation": "propagation", "distance - n": "distance_n"}


@dataclass
class Finding:
    """What became of one module (or one of its settings)."""

    module: int
    name: str
    setting: str | None = None
    value: str | None = None
    reason: str = ""

    def line(self) -> str:
        """One line: module number and name, the setting and value as the pipeline has them, why.

        What comes from the pipeline file is shown with its control characters escaped
        (:func:`~._parse.printable`): the line stays one line, in a TOML comment too.
        """
        text = f"module {self.module} {self.name}"
        if self.setting is not None:
            text += f': "{self.setting}" = "{self.value}"'
        return printable(f"{text}: {self.reason}" if self.reason else text)


@dataclass(frozen=True)
class _Image:
    """An image of the pipeline as cpfeatures would have it: its role and what was done to it."""

    role: str
    illum: bool = False          # divided by an illumination function
    clip_low: bool = False
    clip_high: bool = False
    background: tuple | None = None  # (block size, smoothing) of a subtracted per-image background


@dataclass
class _State:
    config: dict
    translated: list = field(default_factory=list)
    not_needed: list = field(default_factory=list)
    disabled: list = field(default_factory=list)
    unsupported: list = field(default_factory=list)
    notes: list = field(default_factory=list)
    images: dict = field(default_factory=dict)        # pipeline image name -> _Image
    functions: dict = field(default_factory=dict)     # illumination function name -> ("background", b, s) | "given"
    objects: dict = field(default_factory=dict)       # pipeline object name -> Nuclei / Cells / Cytoplasm
    loaded: list = field(default_factory=list)        # roles loaded, in order
    families: dict = field(default_factory=dict)      # family -> module number that set it
    measured_images: dict = field(default_factory=dict)  # family -> roles
    compartments: list = field(default_factory=list)
    image_families: list = field(default_factory=list)
    neighbors: dict = field(default_factory=dict)
    function_names: set = field(default_factory=set)  # images used as illumination functions


def _role(name: str) -> str:
    return name[4:] if name.startswith("Orig") and len(name) > 4 else name


def _yes(value: str | None) -> bool:
    return str(value).strip().lower() in ("yes", "true")


def _float(value: str | None) -> float:
    return float(str(value).strip())


def _pair(value: str | None) -> tuple[float, float]:
    a, b = str(value).split(",")[:2]
    return float(a), float(b)


def _names(values: list[str]) -> list[str]:
    out = []
    for value in values:
        out += [v.strip() for v in value.split(",") if v.strip() and v.strip() != "None"]
    return list(dict.fromkeys(out))


def translate(analysis: list[Module], illum: list[Module] | None = None, analysis_path=None,
              illum_path=None) -> _State:
    """Translate an analysis pipeline (and optionally its illumination pipeline) into settings.

    A setting that cannot be read (a number that is not one) raises :class:`PipelineError`
    naming the file (``analysis_path`` / ``illum_path``), the module and the problem.
    """
    state = _State(config=copy.deepcopy(default_config()))
    if illum is not None:
        _translate_illum(state, illum, illum_path)
    modules = [m for m in analysis]
    for i, module in enumerate(modules):
        if not module.enabled:
            state.disabled.append(Finding(module.number, module.name, reason="disabled: skipped"))
            continue
        handler = _HANDLERS.get(module.name)
        if handler is not None:
            try:
                handler(state, module, modules[i + 1:])
            except (ValueError, IndexError, TypeError, ArithmeticError) as exc:
                raise PipelineError(f"{module}: a setting cannot be read ({printable(exc)})", analysis_path) \
                    from None
        elif module.name in NOT_NEEDED:
            state.not_needed.append(Finding(module.number, module.name, reason=NOT_NEEDED[module.name]))
        else:
            _unknown(state, module, modules[i + 1:])
    _finish(state)
    return state


# -- helpers ---------------------------------------------------------------------------------------

def _refuse(state: _State, module: Module, setting: str | None, value: str | None, reason: str) -> None:
    state.unsupported.append(Finding(module.number, module.name, setting, value, reason))


def _used_later(names: list[str], later: list[Module]) -> bool:
    """Whether a later module that is enabled and not display/save-only reads one of these names."""
    wanted = {n for n in names if n and n != "None"}
    for module in later:
        if not module.enabled or module.name in NOT_NEEDED and module.name != "NamesAndTypes":
            continue
        for _, value in module.settings:
            if value in wanted or any(v.strip() in wanted for v in value.split(",")):
                return True
    return False


def _outputs(module: Module) -> list[str]:
    return [v for t, v in module.settings if t.startswith(("Name the output", "Name the primary objects",
                                                           "Name the objects", "Name the tertiary", "Name the new"))]


def _unknown(state: _State, module: Module, later: list[Module]) -> None:
    outputs = _outputs(module)
    if outputs and not _used_later(outputs, later):
        state.not_needed.append(Finding(module.number, module.name,
                                        reason=f"makes {', '.join(outputs)}, which no measuring module uses"))
        return
    _refuse(state, module, None, None, "not implemented by cpfeatures (it changes or adds numbers)")
    if module.name == "FilterObjects":  # what measures the filtered set measures (unfiltered) objects of the same kind
        source = state.objects.get(module.get("Select the objects to filter", ""))
        if source is not None:
            for name in outputs:
                state.objects[name] = source
        for i, (text, value) in enumerate(module.settings):  # sets relabelled with the filtered one
            if text.startswith("Select additional object to relabel") and value in state.objects:
                state.objects[module.get("Name the relabeled objects", start=i)] = state.objects[value]


def _image(state: _State, module: Module, name: str, setting: str) -> _Image | None:
    image = state.images.get(name)
    if image is None:
        # not made by this pipeline: an image the plate loads (LoadData / NamesAndTypes)
        image = _Image(_role(name))
        state.images[name] = image
        if image.role not in state.loaded:
            state.loaded.append(image.role)
    return image


def _measured(state: _State, module: Module, names: list[str], setting: str) -> list[str]:
    """The roles of images a measuring module reads; each must be corrected as cpfeatures corrects."""
    roles = []
    for name in names:
        image = _image(state, module, name, setting)
        if image.background is not None:
            _refuse(state, module, setting, name, "measures a background-subtracted image (cpfeatures measures the "
                    "illumination-corrected images)")
        elif image.illum and not (image.clip_low and image.clip_high):
            _refuse(state, module, setting, name, "measures an image not clipped to [0, 1] after correction "
                    "(cpfeatures clips as CPJUMP1 does)")
        roles.append(image.role)
    return list(dict.fromkeys(roles))


def _objects(state: _State, module: Module, names: list[str], setting: str) -> list[str]:
    """The compartments of the object sets a module measures; sets cpfeatures does not make are refused."""
    out = []
    for name in names:
        comp = state.objects.get(name)
        if comp is None:
            _refuse(state, module, setting, name, "objects that cpfeatures does not make (it makes one primary, "
                    "one secondary and one tertiary object set)")
            continue
        out.append(comp)
    for comp in out:
        if comp not in state.compartments:
            state.compartments.append(comp)
    return out


def _family(state: _State, module: Module, family: str, images: list[str] | None, settings: dict,
            key: str | None = None) -> None:
    """Record a measuring module's family; a second module of the family must agree with the first."""
    section = state.config["measure"].get(key or family)
    if family in state.families and section is not None and settings:
        different = {k: v for k, v in settings.items() if section.get(k) != v}
        if different:
            k, v = next(iter(different.items()))
            _refuse(state, module, k, str(v), f"a second {module.name} with other settings than module "
                    f"{state.families[family]} (cpfeatures has one setting per family)")
            return
    if section is not None:
        section.update(settings)
    state.families.setdefault(family, module.number)
    state.measured_images.setdefault(family, [])
    state.measured_images[family] += [r for r in images if r not in state.measured_images[family]]
    state.translated.append(Finding(module.number, module.name,
                                    reason=f"[measure.{key or family}]" if section is not None else "[measure]"))


# -- input and correction --------------------------------------------------------------------------

def _load_data(state: _State, module: Module, later) -> None:
    rescale = module.get("Rescale intensities?")
    if rescale is not None and not _yes(rescale):
        _refuse(state, module, "Rescale intensities?", rescale, "cpfeatures always rescales 16-bit images to [0, 1] "
                "(image / 65535), as CellProfiler's default does")
        return
    state.not_needed.append(Finding(module.number, module.name, reason=NOT_NEEDED["LoadData"]))


def _names_and_types(state: _State, module: Module, later) -> None:
    """Image names and, where the rule says so, the channel number or name they come from."""
    import re

    found = []
    by_rules = (module.get("Assign a name to", "") or "").lower().startswith("images matching")
    first_rule = module.index("Select the rule criteria")
    for i, (text, value) in enumerate(module.settings):
        if by_rules and i < first_rule:
            continue  # the single name of "All images" mode, unused with rules
        if text.startswith("Name to assign these images") or text.startswith("Name to assign this image"):
            role = _role(value)
            found.append(role)
            rule = next((v for t, v in reversed(module.settings[:i]) if t.startswith("Select the rule criteria")), "")
            m = re.search(r'ChannelNumber\s+"(\d+)"', rule) or re.search(r'"ch(\d+)"', rule)
            if m:
                state.config["channel_ids"][m.group(1)] = role
            m = re.search(r'ChannelName\s+"([^"]+)"', rule)
            if m:
                state.config["channels"][m.group(1)] = role
        if text.startswith("Set intensity range from") and value.strip().lower().startswith("manual"):
            maximum = module.get("Maximum intensity", start=i)
            if maximum is not None and _float(maximum) != 65535:
                _refuse(state, module, "Maximum intensity", maximum, "cpfeatures rescales 16-bit images by 65535")
    for role in found:
        if role not in state.loaded:
            state.loaded.append(role)
    state.not_needed.append(Finding(module.number, module.name,
                                    reason=f"images {', '.join(found) or 'none'} -> roles ([channels] / "
                                           "[channel_ids] where the rules name them)"))


def _illum_calculate(state: _State, module: Module, later) -> None:
    how = (module.get("Select how the illumination function is calculated") or "").lower()
    each = (module.get("Calculate function for each image individually") or "").lower()
    output = module.get("Name the output image")
    if how == "background" and each.startswith("each"):
        smoothing = (module.get("Smoothing method") or "").lower()
        manual = (module.get("Method to calculate smoothing filter size") or "").lower()
        if smoothing != "gaussian filter" or not manual.startswith("manual"):
            _refuse(state, module, "Smoothing method", module.get("Smoothing method"),
                    "a per-image background is smoothed with a Gaussian filter of a given size in cpfeatures")
        if _yes(module.get("Rescale the illumination function?")) or _yes(module.get("Dilate objects")):
            _refuse(state, module, "Rescale the illumination function?", module.get("Rescale the illumination "
                    "function?"), "a per-image background is neither rescaled nor dilated in cpfeatures")
        state.functions[output] = ("background", int(_float(module.get("Block size"))),
                                   _float(module.get("Smoothing filter size")), module.get("Select the input image"))
        state.translated.append(Finding(module.number, module.name, reason="[segment.nuclei] background_*"))
        return
    if not _used_later([output], later):
        state.not_needed.append(Finding(module.number, module.name, reason=f"makes {output}, which nothing uses"))
        return
    _refuse(state, module, "Select how the illumination function is calculated", module.get(
        "Select how the illumination function is calculated"), "plate illumination functions come from the "
        "illumination pipeline (--illum) or precomputed .npy files, not from the analysis pipeline")


def _illum_apply(state: _State, module: Module, later) -> None:
    clip_low = _yes(module.get("Set output image values less than 0 equal to 0?", "Yes"))
    clip_high = _yes(module.get("Set output image values greater than 1 equal to 1?", "Yes"))
    made = []
    i = 0
    while True:
        i = module.index("Select the input image", i)
        if i < 0:
            break
        name = module.settings[i][1]
        output = module.get("Name the output image", start=i)
        function = module.get("Select the illumination function", start=i)
        state.function_names.add(function)
        method = (module.get("Select how the illumination function is applied", start=i) or "").lower()
        source = _image(state, module, name, "Select the input image")
        kind = state.functions.get(function, "given")
        if kind == "given" and method == "divide":
            state.config["illum"]["enabled"] = True
            state.images[output] = replace(source, illum=True, clip_low=clip_low, clip_high=clip_high)
        elif isinstance(kind, tuple) and method == "subtract" and source.illum:
            state.images[output] = replace(source, background=kind[1:3], clip_low=clip_low, clip_high=clip_high)
        else:
            _refuse(state, module, "Select how the illumination function is applied", method.title(),
                    f"{function} applied by {method} to {name}: cpfeatures divides by plate functions and subtracts "
                    "only the per-image background before nuclei")
            state.images[output] = replace(source, illum=True, clip_low=clip_low, clip_high=clip_high)
            kind = "given"
        made.append("[segment.nuclei] background_*" if isinstance(kind, tuple) else "[illum]")
        i += 1
    state.translated.append(Finding(module.number, module.name, reason=", ".join(dict.fromkeys(made))))


def _image_math(state: _State, module: Module, later) -> None:
    operation = (module.get("Operation") or "").lower()
    output = module.get("Name the output image")
    first = module.get("Select the first image")
    plain = operation == "none" and all(_float(module.get(t, d)) == float(d) for t, d in (
        ("Raise the power of the result by", "1"), ("Multiply the result by", "1"), ("Add to result", "0"),
        ("Multiply the first image by", "1")))
    if plain and first:
        source = _image(state, module, first, "Select the first image")
        state.images[output] = replace(source,
                                       clip_low=source.clip_low or _yes(module.get("Set values less than 0 equal")),
                                       clip_high=source.clip_high or _yes(module.get("Set values greater than 1")))
        state.translated.append(Finding(module.number, module.name, reason=f"{first} -> {output} (clipping)"))
        return
    _unknown(state, module, later)


def _flag_image(state: _State, module: Module, later) -> None:
    if any(_yes(v) for v in module.values("Skip image set if flagged?")):
        _refuse(state, module, "Skip image set if flagged?", "Yes", "skipping flagged sites is not implemented "
                "(every site is measured; filter on the image quality columns afterwards)")
        return
    state.not_needed.append(Finding(module.number, module.name, reason=NOT_NEEDED["FlagImage"]))


# -- segmentation ----------------------------------------------------------------------------------

def _threshold(state: _State, module: Module, start: int, target: dict) -> None:
    """The global threshold settings from "Threshold strategy" on (what is not implemented is refused)."""
    i = max(module.index("Threshold strategy", start), 0)
    strategy = module.get("Threshold strategy", "Global", start=i)
    if strategy.lower() != "global":
        _refuse(state, module, "Threshold strategy", strategy, "only global thresholds are implemented")
    method = module.get("Thresholding method", "Minimum Cross-Entropy", start=i)
    key = _THRESHOLD_METHODS.get(method.lower())
    if key == "otsu" and (module.get("Two-class or three-class thresholding?", "Two classes",
                                     start=i) or "").lower().startswith("three"):
        middle = (module.get("Assign pixels in the middle intensity class", "Foreground", start=i)).lower()
        key = "otsu3_foreground" if middle.startswith("fore") else "otsu3_background"
    if key is None:
        _refuse(state, module, "Thresholding method", method, "implemented: Minimum Cross-Entropy, Otsu (two or "
                "three classes)")
    else:
        target["threshold_method"] = key
    log = module.get("Log transform before thresholding?", start=i)
    if log is not None and _yes(log):
        _refuse(state, module, "Log transform before thresholding?", log, "not implemented")
    target.update({
        "threshold_smoothing_scale": _float(module.get("Threshold smoothing scale", "0", start=i)),
        "threshold_correction": _float(module.get("Threshold correction factor", "1", start=i)),
        "threshold_bounds": list(_pair(module.get("Lower and upper bounds on threshold", "0,1", start=i))),
    })


def _primary(state: _State, module: Module, later) -> None:
    if "Nuclei" in state.objects.values():
        _refuse(state, module, None, None, "a second primary object set (cpfeatures segments one)")
        return  # its objects stay unknown: what measures them is refused too
    name = module.get("Select the input image")
    image = _image(state, module, name, "Select the input image")
    nuclei = {}
    checks = [("Use advanced settings?", "Yes", "basic mode declumps by intensity; cpfeatures declumps by shape"),
              ("Method to distinguish clumped objects", "Shape", "only Shape declumping is implemented"),
              ("Method to draw dividing lines between clumped objects", "Shape", "only Shape dividing lines"),
              ("Fill holes in identified objects?", "Never", "holes are not filled in cpfeatures' nuclei (CPJUMP1)"),
              ("Handling of objects if excessive number of objects identified", "Continue",
               "every object is kept in cpfeatures")]
    for text, wanted, reason in checks:
        value = module.get(text)
        if value is not None and value.strip().lower() != wanted.lower():
            _refuse(state, module, text, value, reason)
    _threshold(state, module, 0, nuclei)
    low, high = _pair(module.get("Typical diameter of objects", "10,40"))
    low_res = _yes(module.get("Speed up by using lower-resolution image to find local maxima?", "Yes"))
    if _yes(module.get("Automatically calculate minimum allowed distance between local maxima?", "No")):
        # CellProfiler: 7 px on the image resized by 10 / min diameter, else min diameter / 1.5
        suppression = 6.5 * low / 10 if (low > 10 and low_res) else low / 1.5
    else:
        suppression = _float(module.get("Suppress local maxima that are closer than this", "7"))
    nuclei.update({"diameter_range": [int(low), int(high)],
                   "discard_outside_diameter": _yes(module.get("Discard objects outside the diameter range?", "Yes")),
                   "discard_border": _yes(module.get("Discard objects touching the border of the image?", "Yes")),
                   "maxima_suppression_distance": float(suppression), "low_resolution_maxima": low_res})
    if image.background is not None:
        nuclei["background_block_size"], nuclei["background_smoothing"] = image.background
    else:
        nuclei["background_smoothing"] = 0.0  # no per-image background subtraction before nuclei
    if not image.illum and any(i.illum for i in state.images.values()):
        _refuse(state, module, "Select the input image", name, "nuclei found on an uncorrected image")
    state.config["segment"]["nuclei_image"] = image.role
    state.config["segment"]["nuclei"].update(nuclei)
    state.objects[module.get("Name the primary objects to be identified", "Nuclei")] = "Nuclei"
    state.translated.append(Finding(module.number, module.name, reason="[segment.nuclei]"))


def _secondary(state: _State, module: Module, later) -> None:
    primary = module.get("Select the input objects")
    if state.objects.get(primary) != "Nuclei" or "Cells" in state.objects.values():
        _refuse(state, module, "Select the input objects", primary, "one secondary object set, grown from the "
                "primary objects, is implemented")
        return  # its objects stay unknown: what measures them is refused too
    method = module.get("Select the method to identify the secondary objects", "Propagation")
    key = _SECONDARY.get(method.lower())
    if key is None:
        _refuse(state, module, "Select the method to identify the secondary objects", method,
                "implemented: Propagation, Watershed - Image, Distance - N")
        key = "propagation"
    border = module.get("Discard secondary objects touching the border of the image?", "No")
    if _yes(border):
        _refuse(state, module, "Discard secondary objects touching the border of the image?", border,
                "not implemented (cells at the border are kept)")
    name = module.get("Select the input image")
    image = _image(state, module, name, "Select the input image")
    if image.background is not None:
        _refuse(state, module, "Select the input image", name, "cells on a background-subtracted image")
    cells = {"method": key, "fill_holes": _yes(module.get("Fill holes in identified objects?", "Yes")),
             "distance": int(_float(module.get("Number of pixels by which to expand the primary objects", "10"))),
             "regularization": _float(module.get("Regularization factor", "0.05"))}
    if key != "distance_n":
        _threshold(state, module, 0, cells)
    state.config["segment"]["cells_image"] = image.role
    state.config["segment"]["cells"].update(cells)
    state.objects[module.get("Name the objects to be identified", "Cells")] = "Cells"
    state.translated.append(Finding(module.number, module.name, reason="[segment.cells]"))


def _tertiary(state: _State, module: Module, later) -> None:
    larger, smaller = module.get("Select the larger identified objects"), module.get("Select the smaller identified")
    if state.objects.get(larger) != "Cells" or state.objects.get(smaller) != "Nuclei" or \
            "Cytoplasm" in state.objects.values():
        _refuse(state, module, "Select the larger identified objects", larger, "one tertiary set, cells minus "
                "nuclei, is implemented")
        return
    state.config["segment"]["shrink_nuclei"] = _yes(module.get("Shrink smaller object prior to subtraction?", "Yes"))
    state.objects[module.get("Name the tertiary objects to be identified", "Cytoplasm")] = "Cytoplasm"
    state.translated.append(Finding(module.number, module.name, reason="[segment] shrink_nuclei"))


# -- measurements ----------------------------------------------------------------------------------

def _image_list(module: Module) -> list[str]:
    return _names(module.values("Select images to measure") + module.values("Select an image to measure") +
                  module.values("Select the images to measure") + module.values("Select an image to use"))


def _object_list(module: Module) -> list[str]:
    return _names(module.values("Select objects to measure") + module.values("Select an object to measure") +
                  module.values("Select object sets to measure") + module.values("Select the objects to measure"))


def _intensity(state: _State, module: Module, later) -> None:
    images = _measured(state, module, _image_list(module), "Select images to measure")
    _objects(state, module, _object_list(module), "Select objects to measure")
    _family(state, module, "intensity", images, {}, key="intensity")


def _texture(state: _State, module: Module, later) -> None:
    images = _measured(state, module, _image_list(module), "Select images to measure")
    where = (module.get("Measure whole images or objects?", "Both") or "Both").lower()
    if where != "images":
        _objects(state, module, _object_list(module), "Select objects to measure")
    if where in ("both", "images") and "texture" not in state.image_families:
        state.image_families.append("texture")
    scales = [int(_float(v)) for v in module.values("Texture scale to measure")] or [3]
    _family(state, module, "texture", images, {"scales": scales, "gray_levels": int(_float(module.get(
        "Enter how many gray levels to measure the texture at", "256")))})


def _granularity(state: _State, module: Module, later) -> None:
    images = _measured(state, module, _image_list(module), "Select images to measure")
    if _yes(module.get("Measure within objects?", "Yes")):
        _objects(state, module, _object_list(module), "Select objects to measure")
    if "granularity" not in state.image_families:
        state.image_families.append("granularity")
    _family(state, module, "granularity", images, {
        "subsample": _float(module.get("Subsampling factor for granularity measurements", "0.25")),
        "background_subsample": _float(module.get("Subsampling factor for background reduction", "0.25")),
        "element_size": int(_float(module.get("Radius of structuring element", "10"))),
        "spectrum_length": int(_float(module.get("Range of the granular spectrum", "16")))})


def _colocalization(state: _State, module: Module, later) -> None:
    images = _measured(state, module, _image_list(module), "Select images to measure")
    where = (module.get("Select where to measure correlation", "Both") or "").lower()
    if where != "within objects":
        _refuse(state, module, "Select where to measure correlation", module.get("Select where to measure "
                "correlation"), "whole-image colocalization is not implemented (within objects is)")
    _objects(state, module, _object_list(module), "Select objects to measure")
    run_all = _yes(module.get("Run all metrics?", "Yes"))
    costes = run_all or _yes(module.get("Calculate the Manders coefficients using Costes auto threshold?", "No"))
    settings = {"threshold": _float(module.get("Set threshold as percentage of maximum intensity", "15")),
                "costes": costes}
    if costes:
        method = (module.get("Method for Costes thresholding", "Faster") or "Faster").lower()
        settings["costes_method"] = method
    if not run_all:
        off = [t for t in ("Calculate correlation and slope metrics?", "Calculate the Manders coefficients?",
                           "Calculate the Rank Weighted Colocalization coefficients?",
                           "Calculate the Overlap coefficients?") if not _yes(module.get(t, "Yes"))]
        if off:
            state.notes.append(f"module {module.number} {module.name}: cpfeatures also computes what is switched off "
                               f"here ({'; '.join(off)}): extra columns, the others unchanged")
    _family(state, module, "colocalization", images, settings)


def _sizeshape(state: _State, module: Module, later) -> None:
    _objects(state, module, _object_list(module), "Select object sets to measure")
    advanced = module.get("Calculate the advanced features?")
    if advanced is not None and _yes(advanced):
        _refuse(state, module, "Calculate the advanced features?", advanced, "the advanced size/shape features "
                "(spatial, central, normalized and inertia moments) are not implemented")
    _family(state, module, "sizeshape", [], {"zernike": _yes(module.get("Calculate the Zernike features?", "Yes"))})


def _radial(state: _State, module: Module, later) -> None:
    images = _measured(state, module, _image_list(module), "Select images to measure")
    objects, centres = [], []
    for i, (text, value) in enumerate(module.settings):
        if text.startswith("Select objects to measure"):
            objects.append(value)
            centres.append(module.get("Object to use as center?", "These objects", start=i))
    other = [c for c in centres if not c.lower().startswith("these")]
    if other:
        _refuse(state, module, "Object to use as center?", other[0], "centres from other objects are a Python-only "
                "option (measure.radial(centers=...)), not a run setting")
    _objects(state, module, objects, "Select objects to measure")
    if len(module.values("Number of bins")) > 1:
        _refuse(state, module, "Number of bins", ", ".join(module.values("Number of bins")), "one set of bins")
    zernikes = (module.get("Calculate intensity Zernikes?", "None") or "None").lower()
    settings = {"bins": int(_float(module.get("Number of bins", "4"))),
                "scaled": _yes(module.get("Scale the bins?", "Yes")),
                "max_radius": int(_float(module.get("Maximum radius", "100"))),
                "zernike_phase": zernikes.startswith("magnitudes and phase")}
    if zernikes != "none":
        settings["zernike"] = int(_float(module.get("Maximum zernike moment", "9")))
    _family(state, module, "radial", images, settings)


def _neighbors(state: _State, module: Module, later) -> None:
    obj, other = module.get("Select objects to measure"), module.get("Select neighboring objects to measure")
    if obj != other:
        _refuse(state, module, "Select neighboring objects to measure", other, "neighbours of another object set")
        return
    comps = _objects(state, module, [obj], "Select objects to measure")
    if not comps:
        return
    if not _yes(module.get("Consider objects discarded for touching image border?", "Yes")):
        _refuse(state, module, "Consider objects discarded for touching image border?", "No", "discarded objects "
                "always count as neighbours in cpfeatures")
    method = (module.get("Method to determine neighbors", "Expand until adjacent") or "").lower()
    if method.startswith("within"):
        entry = int(_float(module.get("Neighbor distance", "5")))
    elif method.startswith("adjacent"):
        entry = "adjacent"
    else:
        _refuse(state, module, "Method to determine neighbors", module.get("Method to determine neighbors"),
                "implemented: Within a specified distance, Adjacent")
        return
    state.neighbors.setdefault(comps[0], [])
    if entry not in state.neighbors[comps[0]]:
        state.neighbors[comps[0]].append(entry)
    state.families.setdefault("neighbors", module.number)
    state.translated.append(Finding(module.number, module.name, reason="[measure.neighbors]"))


def _image_quality(state: _State, module: Module, later) -> None:
    if _yes(module.get("Calculate thresholds?", "No")) or any(_yes(v) for v in module.values("Calculate thresholds?")):
        _refuse(state, module, "Calculate thresholds?", "Yes", "the image-quality thresholds are not implemented "
                "(focus, saturation and intensity are)")
    which = (module.get("Calculate metrics for which images?", "All loaded images") or "").lower()
    if not which.startswith("all"):
        names = _names(module.values("Select the images to measure"))
        _measured(state, module, names, "Select the images to measure")
        state.notes.append(f"module {module.number} {module.name}: measured on every image, not only "
                           f"{', '.join(names)} (extra columns)")
    if len(module.values("Calculate blur metrics?")) > 1:
        _refuse(state, module, "Image count", module.get("Image count"), "one set of image-quality settings")
        return
    scales = [int(_float(v)) for v in module.values("Spatial scale for blur measurements")] or [20]
    section = state.config["measure"]["imagequality"]
    section.update({"scales": scales, "blur": _yes(module.get("Calculate blur metrics?", "Yes")),
                    "saturation": _yes(module.get("Calculate saturation metrics?", "Yes")),
                    "intensity": _yes(module.get("Calculate intensity metrics?", "Yes")),
                    "scaling": _yes(module.get("Include the image rescaling value?", "Yes"))})
    if "imagequality" not in state.image_families:
        state.image_families.append("imagequality")
    state.translated.append(Finding(module.number, module.name, reason="[measure.imagequality]"))


# -- the illumination pipeline ----------------------------------------------------------------------

def _translate_illum(state: _State, modules: list[Module], path=None) -> None:
    factors, settings, functions = {}, [], {}  # resized image -> factor; function -> its image's factor
    for module in modules:
        try:
            _illum_module(state, module, factors, settings, functions)
        except (ValueError, IndexError, TypeError, ArithmeticError) as exc:
            raise PipelineError(f"{module} (illumination): a setting cannot be read ({printable(exc)})", path) \
                from None
    _illum_settings(state, settings)


def _illum_module(state: _State, module: Module, factors: dict, settings: list, functions: dict) -> None:
    """One module of the illumination pipeline (``factors``, ``settings``, ``functions`` carry what it makes)."""
    if not module.enabled:
        state.disabled.append(Finding(module.number, f"{module.name} (illumination)", reason="disabled: skipped"))
        return
    label = f"{module.name} (illumination)"
    if module.name == "Resize":
        method = (module.get("Resizing method") or "").lower()
        interpolation = (module.get("Interpolation method") or "").lower()
        if not method.startswith("resize by a fraction") or interpolation != "bilinear":
            state.unsupported.append(Finding(module.number, label, "Resizing method", module.get(
                "Resizing method"), "the functions are computed on images resized by a factor, bilinear"))
            return
        source = module.get("Select the input image")
        x, y = module.get("Resizing factor") or module.get("X Resizing factor"), \
            module.get("Resizing factor") or module.get("Y Resizing factor")
        if x != y:
            state.unsupported.append(Finding(module.number, label, "Y Resizing factor", y, "the same factor "
                                             "along x and y"))
            return
        factor = _float(x)
        if source in functions:  # resizing a function back to the image size
            if abs(factor * functions[source] - 1) > 1e-9:
                state.unsupported.append(Finding(module.number, label, "Resizing factor", module.get(
                    "Resizing factor"), f"the function of an image resized by {functions[source]} is resized "
                    f"back by {1 / functions[source]:g} in cpfeatures"))
                return
            state.translated.append(Finding(module.number, label, reason="[illum] (back to the image size)"))
            return
        factors[module.get("Name the output image")] = factor
        state.translated.append(Finding(module.number, label, reason="[illum] downsample"))
    elif module.name == "CorrectIlluminationCalculate":
        checks = [("Select how the illumination function is calculated", "regular"),
                  ("Calculate function for each image individually, or based on all images?", "all"),
                  ("Smoothing method", "median filter"), ("Method to calculate smoothing filter size", "manual"),
                  ("Dilate objects in the final averaged image?", "no")]
        bad = next(((t, module.get(t)) for t, want in checks
                    if not (module.get(t) or "").lower().startswith(want)), None)
        if bad:
            state.unsupported.append(Finding(module.number, label, bad[0], bad[1], "implemented: Regular, All, "
                                             "Median Filter of a given size, no dilation (CPJUMP1_illum)"))
            return
        rescale = (module.get("Rescale the illumination function?") or "Yes").lower()
        if rescale not in ("yes", "no"):
            state.unsupported.append(Finding(module.number, label, "Rescale the illumination function?",
                                             module.get("Rescale the illumination function?"),
                                             "implemented: Yes (robust minimum) or No"))
            return
        source = module.get("Select the input image")
        functions[module.get("Name the output image")] = factors.get(source, 1.0)
        settings.append((module.number, factors.get(source, 1.0),
                         int(_float(module.get("Smoothing filter size"))), rescale == "yes"))
        state.translated.append(Finding(module.number, label, reason="[illum]"))
    elif module.name in NOT_NEEDED:
        state.not_needed.append(Finding(module.number, label, reason=NOT_NEEDED[module.name]))
    else:
        state.unsupported.append(Finding(module.number, label, reason="not implemented in the illumination "
                                                                     "phase"))


def _illum_settings(state: _State, settings: list) -> None:
    """One set of illumination settings for every channel, or what differs refused."""
    distinct = sorted(set(s[1:] for s in settings))
    if len(distinct) > 1:
        first = settings[0]
        other = next(s for s in settings if s[1:] != first[1:])
        state.unsupported.append(Finding(other[0], "CorrectIlluminationCalculate (illumination)", "settings",
                                         f"{other[1:]} vs {first[1:]} in module {first[0]}",
                                         "one set of illumination settings for every channel"))
    elif distinct:
        downsample, size, rescale = distinct[0]
        state.config["illum"].update({"enabled": True, "downsample": float(downsample),
                                      "median_filter_size": size, "rescale": rescale})


# -- the end ----------------------------------------------------------------------------------------

def _finish(state: _State) -> None:
    cfg = state.config
    if not any(i.illum for i in state.images.values()):
        cfg["illum"]["enabled"] = False
    measure = cfg["measure"]
    families = [f for f in ALL_FAMILIES if f in state.families]
    measure["families"] = "all" if families == list(ALL_FAMILIES) else families
    order = ["Nuclei", "Cells", "Cytoplasm"]
    if state.compartments:
        measure["compartments"] = [c for c in order if c in state.compartments]
    measure["image_families"] = [f for f in ("texture", "granularity", "imagequality") if f in state.image_families]
    neighbors = {comp: state.neighbors.get(comp, []) for comp in ("Nuclei", "Cells", "Cytoplasm")
                 if comp in state.neighbors or comp in measure["neighbors"]}
    measure["neighbors"] = neighbors
    roles = sorted({r for rs in state.measured_images.values() for r in rs})
    loaded = list(state.loaded)
    if roles and sorted(loaded) != roles:
        measure["images"] = roles
    differing = [f for f, rs in state.measured_images.items() if rs and sorted(rs) != roles]
    for family in differing:
        state.notes.append(f"{family}: the pipeline measures {', '.join(sorted(state.measured_images[family]))}; "
                           f"cpfeatures measures every family on {', '.join(roles)} (extra columns)")
    functions = {_role(n) for m in state.function_names for n in [m]}
    loaded = [r for r in loaded if r not in functions]  # illumination functions loaded as images
    default_roles = ("AGP", "Brightfield", "DNA", "ER", "HighZBF", "LowZBF", "Mito", "RNA")
    if loaded and sorted(loaded) != sorted(default_roles):
        cfg["run"]["channels"] = loaded


_HANDLERS = {
    "LoadData": _load_data, "NamesAndTypes": _names_and_types, "FlagImage": _flag_image,
    "CorrectIlluminationCalculate": _illum_calculate, "CorrectIlluminationApply": _illum_apply,
    "ImageMath": _image_math, "IdentifyPrimaryObjects": _primary, "IdentifySecondaryObjects": _secondary,
    "IdentifyTertiaryObjects": _tertiary, "MeasureObjectIntensity": _intensity, "MeasureTexture": _texture,
    "MeasureGranularity": _granularity, "MeasureColocalization": _colocalization,
    "MeasureObjectSizeShape": _sizeshape, "MeasureObjectIntensityDistribution": _radial,
    "MeasureObjectNeighbors": _neighbors, "MeasureImageQuality": _image_quality,
    "MeasureCorrelation": _colocalization,  # MeasureColocalization's name up to CellProfiler 3
}
