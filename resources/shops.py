"""The shop registry and its token vault.

    registry = ShopRegistry(MetasyncDatabase.from_settings(), TokenVault.from_settings())
    registry.add(ShopProfile(shop_id="acme", ...), token="EAAB...")
    shop = registry.get("acme")             # a ShopProfile: no token on it
    token = registry.token_for("acme")      # decrypted on demand, inside the run that needs it

Tokens are encrypted at rest with Fernet (AES-128-CBC + HMAC-SHA256, from `cryptography`).
Only a short fingerprint (first hex digits of the token's SHA-256) is ever shown.
"""

import hashlib
import logging
import os
import re
from collections.abc import Iterable
from enum import StrEnum
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken
from pydantic import BaseModel, Field, field_validator
from sqlalchemy import select, update

from resources.currencies import unknown_currency_problem
from resources.db import MetasyncDatabase
from resources.db.schema import shops
from resources.db.types import utcnow
from resources.settings import MetasyncSettings, get_settings

logger = logging.getLogger(__name__)

SHOP_ID_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")


class ShopStatus(StrEnum):
    ACTIVE = "active"
    PAUSED = "paused"
    NEEDS_REAUTH = "needs_reauth"


class Capability(StrEnum):
    ONSITE_ORDERS = "onsite_orders"  # Meta checkout: orders come from Meta, go to the OMS
    OFFERS = "offers"  # the store is the source of truth for discounts


class ShopProfile(BaseModel):
    """One shop as metasync knows it. Never carries the token."""

    shop_id: str
    name: str
    catalog_id: str
    cms_id: str | None = None
    page_id: str | None = None
    pixel_id: str | None = None
    business_id: str | None = None
    currency: str = Field(pattern=r"^[A-Z]{3}$")
    timezone: str = "UTC"
    source_kind: str
    source_location: str
    capabilities: list[Capability] = Field(default_factory=list)
    admin_url_template: str | None = None
    # The product page on the shop's storefront, e.g. https://acme.example/products/{handle}.
    storefront_url_template: str | None = None
    # Meta requires a brand; used for products whose store row names none (default: the name).
    default_brand: str | None = None
    status: ShopStatus = ShopStatus.ACTIVE
    status_reason: str | None = None

    @field_validator("shop_id")
    @classmethod
    def _slug(cls, value: str) -> str:
        if not SHOP_ID_PATTERN.match(value):
            raise ValueError(
                f"shop id {value!r} must be a slug: lowercase letters, digits, '-' or '_'"
            )
        return value

    def has(self, capability: Capability) -> bool:
        return capability in self.capabilities


class UnknownShop(LookupError):
    pass


class VaultError(RuntimeError):
    pass


class InvalidShop(ValueError):
    """A shop profile that cannot be registered; the message says which shop and why."""


def token_fingerprint(token: str) -> str:
    """A short, non-reversible name for a token, safe to log."""
    return hashlib.sha256(token.encode()).hexdigest()[:12]


class TokenVault:
    """Encrypts and decrypts shop tokens with one Fernet key."""

    def __init__(self, key: bytes) -> None:
        self._fernet = Fernet(key)

    @classmethod
    def from_settings(cls, settings: MetasyncSettings | None = None) -> "TokenVault":
        settings = settings or get_settings()
        if settings.vault_key is not None:
            return cls(settings.vault_key.get_secret_value().encode())
        return cls(_local_key(settings.state_dir / "vault.key"))

    def encrypt(self, token: str) -> bytes:
        return self._fernet.encrypt(token.encode())

    def decrypt(self, ciphertext: bytes) -> str:
        try:
            return self._fernet.decrypt(ciphertext).decode()
        except InvalidToken as exc:
            raise VaultError(
                "cannot decrypt a shop token: METASYNC_VAULT_KEY differs from the key that "
                "encrypted it"
            ) from exc


def _local_key(path: Path) -> bytes:
    """The development key file, created once with owner-only permissions."""
    if path.exists():
        return path.read_bytes().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    key = Fernet.generate_key()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(key)
    logger.info("created a local vault key at %s (set METASYNC_VAULT_KEY in production)", path)
    return key


class ShopRegistry:
    def __init__(self, db: MetasyncDatabase, vault: TokenVault) -> None:
        self._db = db
        self._vault = vault

    @classmethod
    def from_settings(cls) -> "ShopRegistry":
        db = MetasyncDatabase.from_settings()
        db.create_schema()
        return cls(db, TokenVault.from_settings())

    @property
    def db(self) -> MetasyncDatabase:
        return self._db

    def add(self, profile: ShopProfile, token: str) -> ShopProfile:
        """Insert or replace a shop and its token."""
        # Checked here, not on ShopProfile: a profile stored before the check must still load
        # (its catalog run then fails with the same message) without breaking other shops.
        problem = unknown_currency_problem(profile.currency)
        if problem:
            raise InvalidShop(f"shop {profile.shop_id}: {problem}")
        now = utcnow()
        values = _profile_columns(profile) | {
            "token_ciphertext": self._vault.encrypt(token),
            "token_fingerprint": token_fingerprint(token),
            "updated_at": now,
        }
        with self._db.begin() as conn:
            exists = conn.execute(
                select(shops.c.shop_id).where(shops.c.shop_id == profile.shop_id)
            ).first()
            if exists:
                conn.execute(
                    update(shops).where(shops.c.shop_id == profile.shop_id).values(**values)
                )
            else:
                conn.execute(shops.insert().values(created_at=now, **values))
        logger.info("shop %s registered (token %s)", profile.shop_id, token_fingerprint(token))
        return profile

    def get(self, shop_id: str) -> ShopProfile:
        with self._db.begin() as conn:
            row = conn.execute(select(shops).where(shops.c.shop_id == shop_id)).first()
        if row is None:
            raise UnknownShop(
                f"no shop {shop_id!r} in the registry; add it with `metasync shops add`"
            )
        return _to_profile(row)

    def list_shops(self, statuses: Iterable[ShopStatus] | None = None) -> list[ShopProfile]:
        query = select(shops).order_by(shops.c.shop_id)
        if statuses is not None:
            query = query.where(shops.c.status.in_([str(s) for s in statuses]))
        with self._db.begin() as conn:
            return [_to_profile(row) for row in conn.execute(query)]

    def active(self) -> list[ShopProfile]:
        return self.list_shops([ShopStatus.ACTIVE])

    def token_for(self, shop_id: str) -> str:
        with self._db.begin() as conn:
            row = conn.execute(
                select(shops.c.token_ciphertext).where(shops.c.shop_id == shop_id)
            ).first()
        if row is None:
            raise UnknownShop(f"no shop {shop_id!r} in the registry")
        return self._vault.decrypt(row.token_ciphertext)

    def replace_token(self, shop_id: str, token: str) -> None:
        """Rotate a token; a shop paused for re-authentication becomes active again."""
        self.get(shop_id)
        with self._db.begin() as conn:
            conn.execute(
                update(shops)
                .where(shops.c.shop_id == shop_id)
                .values(
                    token_ciphertext=self._vault.encrypt(token),
                    token_fingerprint=token_fingerprint(token),
                    status=str(ShopStatus.ACTIVE),
                    status_reason=None,
                    updated_at=utcnow(),
                )
            )

    def set_status(self, shop_id: str, status: ShopStatus, reason: str | None = None) -> None:
        with self._db.begin() as conn:
            changed = conn.execute(
                update(shops)
                .where(shops.c.shop_id == shop_id)
                .values(status=str(status), status_reason=reason, updated_at=utcnow())
            ).rowcount
        if not changed:
            raise UnknownShop(
                f"no shop {shop_id!r} in the registry; add it with `metasync shops add`"
            )
        logger.warning("shop %s is now %s: %s", shop_id, status, reason or "no reason given")


def _profile_columns(profile: ShopProfile) -> dict:
    data = profile.model_dump()
    data["capabilities"] = [str(c) for c in profile.capabilities]
    data["status"] = str(profile.status)
    return data


def _to_profile(row) -> ShopProfile:
    data = {name: getattr(row, name) for name in ShopProfile.model_fields}
    return ShopProfile.model_validate(data)
