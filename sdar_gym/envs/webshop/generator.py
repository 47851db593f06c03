"""Generate a WebShop catalog and goals offline, in the original's JSON schema.

``sdar-gym data webshop --out DIR --products N --seed S`` writes ``items_shuffle.json``,
``items_ins_v2.json`` and ``items_human_ins.json`` (see :mod:`sdar_gym.envs.webshop.catalog`).
Products are drawn from :data:`~sdar_gym.envs.webshop.vocab.PRODUCT_TYPES` (5 categories, ~50
queries): a brand, descriptive words and a head noun make the title; each product carries 3 to 5
of its type's attributes and a subset of its option values; the price falls in the type's range.
Each product gets one human-style goal naming its head noun, one to three of its attributes and
one value per option group, e.g. "i need a long clip in hair extensions that is natural looking,
in jet black color and 16 inch size"; the loader appends the price clause. Every goal is reachable
(its product has its attributes and options), and many products share a goal's query and
attributes, so search and option choice matter. The same seed gives the same files.
"""
from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sdar_gym.core import ConfigError, sdar_gym_home
from sdar_gym.envs.webshop.nouns import heuristic_nouns
from sdar_gym.envs.webshop.vocab import BRANDS, PRODUCT_TYPES, ProductType
from sdar_gym.io import atomic_dir, atomic_write_json

DEFAULT_PRODUCTS = 10_000
PRODUCTS_FILE, ATTRIBUTES_FILE, HUMAN_GOALS_FILE = "items_shuffle.json", "items_ins_v2.json", "items_human_ins.json"
_OPENERS = ("i need", "i am looking for", "i want", "i'm looking for", "find me", "i would like",
            "looking for", "i want to buy", "can you find me", "get me")
_FEATURE_PHRASES = ("for women and men", "for everyday use", "gift idea", "for home and travel",
                    "2024 upgraded", "value pack", "best seller", "with free storage bag")


def _asin(i: int, rng: random.Random) -> str:
    alphabet = "ABCDEFGHJKLMNPQRSTUVWXYZ0123456789"
    return "B0" + "".join(rng.choice(alphabet) for _ in range(4)) + f"{i:04d}"[-4:]


def _product(i: int, t: ProductType, rng: random.Random) -> tuple[dict[str, Any], dict[str, Any], list[dict[str, Any]]]:
    brand = rng.choice(BRANDS)
    noun = rng.choice(t.nouns)
    mods = rng.sample(t.modifiers, rng.randint(1, 2))
    attributes = rng.sample(t.attributes, min(len(t.attributes), rng.randint(3, 5)))
    options = {name: sorted(rng.sample(values, min(len(values), rng.randint(2, 6))), key=values.index)
               for name, values in t.options.items()}
    title_parts = [f"{brand} {' '.join(mods).title()} {noun.title()}", attributes[0].title()]
    if rng.random() < 0.5:
        title_parts.append(rng.choice(_FEATURE_PHRASES).title())
    title = ", ".join(title_parts)
    if "color" in options and rng.random() < 0.3:
        title += f" ({options['color'][0].title()})"
    lo, hi = t.price
    price = round(rng.uniform(lo, hi), 2) - 0.01 * rng.randint(0, 1)
    pricing = f"${price:.2f}"
    if options and rng.random() < 0.2:
        pricing += f" - ${price * rng.uniform(1.1, 1.4):.2f}"
    bullets = [
        f"{attributes[j % len(attributes)].upper()}: this {noun} by {brand} is {attributes[j % len(attributes)]} "
        f"and made to last." for j in range(rng.randint(3, 5))
    ]
    description = (f"The {brand} {noun} is a {' '.join(mods)} choice for {t.query}. "
                   f"It is {', '.join(attributes[:-1])} and {attributes[-1]}. "
                   f"Our {noun} comes with a satisfaction guarantee.")
    asin = _asin(i, rng)
    product = {
        "asin": asin,
        "name": title,
        "full_description": description,
        "small_description": bullets,
        "pricing": pricing,
        "images": [f"https://example.invalid/images/{asin}.jpg"],
        "customization_options": {name.title(): [{"value": v.title() if name == "color" else v, "image": None}
                                                 for v in values] for name, values in options.items()},
        "category": t.category,
        "query": t.query,
        "product_category": t.product_category,
        "average_rating": round(rng.uniform(3.0, 5.0), 1),
        "title_nouns": heuristic_nouns(f"{brand} {noun}"),
    }
    goal_attrs = rng.sample(attributes, rng.randint(1, min(3, len(attributes))))
    goal_options = [rng.choice(values) for name, values in options.items() if rng.random() < 0.85]
    instruction = _instruction(rng, noun, mods, goal_attrs, options, goal_options)
    attrs_entry = {
        "attributes": attributes,
        "instruction": f"i need {noun} that is {' and '.join(goal_attrs)}",
        "instruction_attributes": goal_attrs,
    }
    human = [{"asin": asin, "instruction": instruction, "instruction_attributes": goal_attrs,
              "instruction_options": goal_options}]
    return product, attrs_entry, human


def _instruction(rng: random.Random, noun: str, mods: list[str], attrs: list[str],
                 options: dict[str, list[str]], chosen: list[str]) -> str:
    head = f"{rng.choice(mods)} {noun}" if rng.random() < 0.5 else noun
    if rng.random() < 0.3:  # "a natural looking hair extension that is heat resistant"
        phrase = f"{attrs[0]} {head}" + (f" that is {' and '.join(attrs[1:])}" if attrs[1:] else "")
    else:
        phrase = f"{head} {rng.choice(('that is', 'which is', 'with', 'that are'))} {' and '.join(attrs)}"
    article = "" if noun.endswith("s") else ("an " if phrase[0] in "aeiou" else "a ")
    text = f"{rng.choice(_OPENERS)} {article}{phrase}"
    group = {v: name for name, values in options.items() for v in values}
    parts = [f"{v} {group[v]}" if rng.random() < 0.6 else f"{group[v]}: {v}" for v in chosen]
    if parts:
        text += ", in " + " and ".join(parts)
    return text


def generate_catalog(n_products: int, seed: int = 0, progress: bool = False) -> tuple[list, dict, dict]:
    """``(products, attributes, human goals)`` in the original's schema."""
    if n_products < 1:
        raise ConfigError(f"--products must be at least 1, got {n_products}")
    rng = random.Random(seed)
    products: list[dict[str, Any]] = []
    attributes: dict[str, Any] = {}
    human: dict[str, Any] = {}
    indices = range(n_products)
    if progress:
        from sdar_gym.progress import track

        indices = track(indices, description=f"generating {n_products} WebShop products")
    for i in indices:
        product, attrs, goals = _product(i, PRODUCT_TYPES[rng.randrange(len(PRODUCT_TYPES))], rng)
        while product["asin"] in attributes:  # asins are random: redraw the rare clash
            product["asin"] = _asin(i, rng)
            goals[0]["asin"] = product["asin"]
        products.append(product)
        attributes[product["asin"]] = attrs
        human[product["asin"]] = goals
    return products, attributes, human


def write_catalog(out: Path, n_products: int, seed: int = 0, progress: bool = False) -> Path:
    """Generate and write the three files into ``out`` in one atomic step."""
    products, attributes, human = generate_catalog(n_products, seed, progress)
    with atomic_dir(out) as tmp:
        atomic_write_json(tmp / PRODUCTS_FILE, products, indent=None)
        atomic_write_json(tmp / ATTRIBUTES_FILE, attributes, indent=None)
        atomic_write_json(tmp / HUMAN_GOALS_FILE, human, indent=None)
    return out


def default_data_dir() -> Path:
    return sdar_gym_home() / "webshop"


def ensure_default_catalog(data_dir: Path | None = None) -> Path:
    """The default catalog folder, generated on first use (with a progress bar) and reused after."""
    data_dir = data_dir or default_data_dir()
    if not (data_dir / PRODUCTS_FILE).is_file():
        write_catalog(data_dir, DEFAULT_PRODUCTS, seed=0, progress=True)
    return data_dir


@dataclass
class GenerateWebShopArgs:
    """Generate a WebShop catalog and goals in the original's JSON schema."""

    out: Path = Path("data/webshop")
    """Folder to write items_shuffle.json, items_ins_v2.json and items_human_ins.json into."""
    products: int = DEFAULT_PRODUCTS
    """Number of products (one goal each)."""
    seed: int = 0
    """Random seed; the same seed gives the same files."""

    def run(self) -> None:
        write_catalog(self.out, self.products, self.seed, progress=True)
        print(f"wrote {self.products} products and goals to {self.out}")
