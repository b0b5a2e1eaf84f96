"""Class maps of the OOD benchmarks onto the 1000 ImageNet outputs.

Each benchmark labels its images in its own classes; a 1000-way ImageNet classifier is
scored on them through a map from benchmark classes to ImageNet output indices:

* **16 cue-conflict categories** (Geirhos et al. 2019, model-vs-human): the ImageNet
  indices of each category are the WordNet hyponyms of the category's synset, with the
  classes the authors excluded removed (``modelvshuman/helper/human_categories.py``).
  Probabilities are *averaged* over a category's indices before the argmax over the 16.
* **IN-9** (Xiao et al. 2020, MadryLab ``backgrounds_challenge/in_to_in9.json``): nine
  superclasses by ranges of ImageNet indices; an index outside them predicts no IN-9
  class (counted wrong). The argmax is over all 1000 outputs, then mapped.
* **ObjectNet-113** (Barbu et al. 2019, as GenInt's ``obj2imgnet_id.txt``): the 113
  ObjectNet classes that overlap ImageNet, with the 125 ImageNet indices they cover.
* **ImageNet-A** (Hendrycks et al. 2021): the 200 ImageNet classes it holds; logits are
  restricted to them before the argmax, as the authors' evaluation does.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

SHAPE_BIAS_CATEGORIES: dict[str, tuple[int, ...]] = {
    "airplane": (
        404,
    ),
    "bear": (
        294, 295, 296, 297,
    ),
    "bicycle": (
        444, 671,
    ),
    "bird": (
        8, 10, 11, 12, 13, 14, 15, 16, 18, 19, 20, 22, 23, 24, 80, 81, 82, 83, 87, 88, 89, 90, 91,
        92, 93, 94, 95, 96, 98, 99, 100, 127, 128, 129, 130, 131, 132, 133, 135, 136, 137, 138,
        139, 140, 141, 142, 143, 144, 145,
    ),
    "boat": (
        472, 554, 625, 814, 914,
    ),
    "bottle": (
        440, 720, 737, 898, 899, 901, 907,
    ),
    "car": (
        436, 511, 817,
    ),
    "cat": (
        281, 282, 283, 284, 285, 286,
    ),
    "chair": (
        423, 559, 765, 857,
    ),
    "clock": (
        409, 530, 892,
    ),
    "dog": (
        152, 153, 154, 155, 156, 157, 158, 159, 160, 161, 162, 163, 164, 165, 166, 167, 168, 169,
        170, 171, 172, 173, 174, 175, 176, 177, 178, 179, 180, 181, 182, 183, 184, 185, 186, 187,
        188, 189, 190, 191, 193, 194, 195, 196, 197, 198, 199, 200, 201, 202, 203, 205, 206, 207,
        208, 209, 210, 211, 212, 213, 214, 215, 216, 217, 218, 219, 220, 221, 222, 223, 224, 225,
        226, 228, 229, 230, 231, 232, 233, 234, 235, 236, 237, 238, 239, 240, 241, 243, 244, 245,
        246, 247, 248, 249, 250, 252, 253, 254, 255, 256, 257, 259, 261, 262, 263, 265, 266, 267,
        268,
    ),
    "elephant": (
        385, 386,
    ),
    "keyboard": (
        508, 878,
    ),
    "knife": (
        499,
    ),
    "oven": (
        766,
    ),
    "truck": (
        555, 569, 656, 675, 717, 734, 864, 867,
    ),
}
"""ImageNet indices of each of the 16 cue-conflict categories (model-vs-human)."""

IN9_CLASSES: tuple[str, ...] = (
    "dog", "bird", "vehicle", "reptile", "carnivore", "insect", "instrument", "primate", "fish",
)
"""The nine IN-9 classes in label order (the released folders ``00_dog`` ... ``08_fish``)."""

IN9_INDICES: dict[str, tuple[int, ...]] = {
    "dog": (
        *range(151, 171), *range(173, 269),
    ),
    "bird": (
        *range(7, 25), *range(87, 101), *range(127, 147),
    ),
    "vehicle": (
        *range(407, 409), 428, 436, 444, 468, 511, 547, 555, 561, 565, 569, 573, 586, 603,
        609, 612, 627, 656, 661, 665, *range(670, 672), 675, 690, 705, 717, 734, 751, 757,
        791, *range(802, 804), 817, 820, 829, 847, 864, *range(866, 868), 870, 880,
    ),
    "reptile": (
        *range(33, 69),
    ),
    "carnivore": (
        *range(269, 281), *range(286, 300), *range(356, 363), *range(387, 389),
    ),
    "insect": (
        *range(300, 327),
    ),
    "instrument": (
        *range(401, 403), 420, 432, 486, 494, 513, 541, 546, 558, 566, 577, 579, *range(593,
        595), *range(641, 643), *range(683, 685), 687, 699, 776, 822, 875, 881, 889,
    ),
    "primate": (
        *range(365, 385),
    ),
    "fish": (
        *range(0, 7), *range(389, 398),
    ),
}
"""ImageNet indices of each IN-9 class (``in_to_in9.json``)."""

OBJECTNET_TO_IMAGENET: dict[str, tuple[int, ...]] = {
    "alarm_clock": (409, 530),
    "backpack": (414,),
    "banana": (954,),
    "band_aid": (419,),
    "basket": (790,),
    "beer_bottle": (440,),
    "bench": (703,),
    "bicycle": (671, 444),
    "binder_closed": (446,),
    "bottle_cap": (455,),
    "bread_loaf": (930,),
    "broom": (462,),
    "bucket": (463,),
    "butchers_knife": (499,),
    "can_opener": (473,),
    "candle": (470,),
    "cellphone": (487,),
    "chair": (423, 559, 765),
    "clothes_hamper": (588,),
    "coffee_french_press": (550,),
    "combination_lock": (507,),
    "computer_mouse": (673,),
    "desk_lamp": (846,),
    "doormat": (539,),
    "dress": (578,),
    "dress_shoe_men": (630,),
    "drill": (740,),
    "drinking_cup": (968,),
    "drying_rack_for_dishes": (729,),
    "envelope": (549,),
    "fan": (545,),
    "frying_pan": (567,),
    "full_sized_towel": (434,),
    "hair_dryer": (589,),
    "hammer": (587,),
    "hand_towel_or_rag": (533,),
    "helmet": (560, 518),
    "iron_for_clothes": (606,),
    "jeans": (608,),
    "keyboard": (508,),
    "ladle": (618,),
    "lampshade": (619,),
    "laptop_open": (620,),
    "lemon": (951,),
    "letter_opener": (623,),
    "lighter": (626,),
    "lipstick": (629,),
    "match": (644,),
    "measuring_cup": (647,),
    "microwave": (651,),
    "mixing_salad_bowl": (659,),
    "monitor": (664,),
    "mug": (504,),
    "nail_fastener": (677,),
    "necklace": (679,),
    "orange": (950,),
    "padlock": (695,),
    "paintbrush": (696,),
    "paper_towel": (700,),
    "pen": (418, 749, 563),
    "pill_bottle": (720,),
    "pillow": (721,),
    "pitcher": (725,),
    "plastic_bag": (728,),
    "plate": (923,),
    "plunger": (731,),
    "pop_can": (737,),
    "portable_heater": (811,),
    "printer": (742,),
    "remote_control": (761,),
    "ruler": (769,),
    "running_shoe": (770,),
    "safety_pin": (772,),
    "salt_shaker": (773,),
    "sandal": (774,),
    "screw": (783,),
    "shovel": (792,),
    "skirt": (601, 655, 689),
    "sleeping_bag": (797,),
    "soap_dispenser": (804,),
    "sock": (806,),
    "soup_bowl": (809,),
    "spatula": (813,),
    "speaker": (632,),
    "still_camera": (732, 759),
    "strainer": (828,),
    "stuffed_animal": (850,),
    "suit_jacket": (834,),
    "sunglasses": (837,),
    "sweater": (841,),
    "swimming_trunks": (842,),
    "t-shirt": (610,),
    "teapot": (849,),
    "tennis_racket": (752,),
    "tie": (457, 906),
    "toaster": (859,),
    "toilet_paper_roll": (999,),
    "trash_bin": (412,),
    "tray": (868,),
    "tv": (851,),
    "umbrella": (879,),
    "vacuum_cleaner": (882,),
    "vase": (883,),
    "wallet": (893,),
    "watch": (531,),
    "water_bottle": (898,),
    "weight_exercise": (543,),
    "weight_scale": (778,),
    "wheel": (479, 694),
    "whistle": (902,),
    "wine_bottle": (907,),
    "winter_glove": (658,),
    "wok": (909,),
}
"""The 113 ObjectNet classes (folder names) shared with ImageNet and their 125 indices."""

IMAGENET_A_INDICES: tuple[int, ...] = (
    6, 11, 13, 15, 17, 22, 23, 27, 30, 37, 39, 42, 47, 50, 57, 70, 71, 76, 79, 89, 90, 94, 96, 97,
    99, 105, 107, 108, 110, 113, 124, 125, 130, 132, 143, 144, 150, 151, 207, 234, 235, 254, 277,
    283, 287, 291, 295, 298, 301, 306, 307, 308, 309, 310, 311, 313, 314, 315, 317, 319, 323, 324,
    326, 327, 330, 334, 335, 336, 347, 361, 363, 372, 378, 386, 397, 400, 401, 402, 404, 407, 411,
    416, 417, 420, 425, 428, 430, 437, 438, 445, 456, 457, 461, 462, 470, 472, 483, 486, 488, 492,
    496, 514, 516, 528, 530, 539, 542, 543, 549, 552, 557, 561, 562, 569, 572, 573, 575, 579, 589,
    606, 607, 609, 614, 626, 627, 640, 641, 642, 643, 658, 668, 677, 682, 684, 687, 701, 704, 719,
    736, 746, 749, 752, 758, 763, 765, 768, 773, 774, 776, 779, 780, 786, 792, 797, 802, 803, 804,
    813, 815, 820, 823, 831, 833, 835, 839, 845, 847, 850, 859, 862, 870, 879, 880, 888, 890, 897,
    900, 907, 913, 924, 932, 933, 934, 937, 943, 945, 947, 951, 954, 956, 957, 959, 971, 972, 980,
    981, 984, 986, 987, 988,
)
"""The 200 ImageNet classes of ImageNet-A, in index (= sorted WordNet id) order."""


def index_map(groups: Mapping[str, Sequence[int]], classes: Sequence[str] | None = None,
              *, n_outputs: int = 1000) -> np.ndarray:
    """An ``n_outputs`` array giving each output index its group's position, or -1.

    ``classes`` fixes the group order (default: the mapping's order). An index listed in
    two groups is an error: the map must be a function.
    """
    order = list(groups) if classes is None else list(classes)
    table = np.full(n_outputs, -1, dtype=np.int64)
    for position, name in enumerate(order):
        for index in groups[name]:
            if table[index] != -1:
                raise ValueError(f"ImageNet index {index} is in two classes of the map")
            table[index] = position
    return table


__all__ = [
    "IMAGENET_A_INDICES",
    "IN9_CLASSES",
    "IN9_INDICES",
    "OBJECTNET_TO_IMAGENET",
    "SHAPE_BIAS_CATEGORIES",
    "index_map",
]
