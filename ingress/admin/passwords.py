"""How the admin API shows a webhook's Basic-auth password, and takes it back.

A password given in clear is stored (the webhook compares it per request) but
never shown: replies carry `PASSWORD_MASK` instead. A `{{$env.NAME}}` password
names a variable, not a secret, and is shown as it is. A client that sends a
version back as it read it sends the mask, which stands for the stored password."""

from __future__ import annotations

import msgspec

from engine.definition import BasicAuthentication, WebhookConfig, WorkflowVersion
from engine.trigger import env_placeholder
from ingress.errors import HTTPErrors

PASSWORD_MASK = "********"


def masked(version: WorkflowVersion) -> WorkflowVersion:
    """A copy of `version` fit for a reply (the store's copy stays as it is)."""
    auth = version.config.basicAuthentication
    if not isinstance(auth, BasicAuthentication) or env_placeholder(auth.password) is not None:
        return msgspec.structs.replace(version)
    shown = msgspec.structs.replace(auth, password=PASSWORD_MASK)
    config = msgspec.structs.replace(version.config, basicAuthentication=shown)
    return msgspec.structs.replace(version, config=config)


def unmasked(config: WebhookConfig, stored: WebhookConfig | None) -> WebhookConfig:
    """`config` with a masked password replaced by the one in `stored`."""
    auth = config.basicAuthentication
    if not isinstance(auth, BasicAuthentication) or auth.password != PASSWORD_MASK:
        return config
    kept = stored.basicAuthentication if stored is not None else None
    if not isinstance(kept, BasicAuthentication):
        raise HTTPErrors(
            400,
            [
                f'config.basicAuthentication.password: "{PASSWORD_MASK}" stands for the '
                "stored password and there is none; send the password or {{$env.NAME}}"
            ],
        )
    restored = msgspec.structs.replace(auth, password=kept.password)
    return msgspec.structs.replace(config, basicAuthentication=restored)
