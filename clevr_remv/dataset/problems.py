"""What `clevr-remv validate` finds: one problem per file or folder, an error or a warning."""

import dataclasses

ERROR = "error"
WARNING = "warning"


@dataclasses.dataclass(frozen=True)
class Problem:
    """One finding: the file or folder it concerns, what is wrong, and how bad it is."""

    path: str
    message: str
    severity: str = ERROR

    def __str__(self):
        return f"{self.severity.upper()} {self.path}: {self.message}"
