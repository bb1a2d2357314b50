"""An in-memory keyring backend, so tests never touch a real keyring.

Select it with PYTHON_KEYRING_BACKEND=keyring_memory.MemoryKeyring (this folder is on
sys.path under pytest). Its high priority also makes keyring's auto-detection pick it
over any real backend once this module has been imported.
"""

from keyring.backend import KeyringBackend
from keyring.compat import properties
from keyring.errors import PasswordDeleteError


class MemoryKeyring(KeyringBackend):
    @properties.classproperty
    def priority(cls) -> float:
        return 100

    def __init__(self):
        super().__init__()
        self.passwords: dict[tuple[str, str], str] = {}

    def get_password(self, service, username):
        return self.passwords.get((service, username))

    def set_password(self, service, username, password):
        self.passwords[(service, username)] = password

    def delete_password(self, service, username):
        try:
            del self.passwords[(service, username)]
        except KeyError:
            raise PasswordDeleteError("no such password") from None
