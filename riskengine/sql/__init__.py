"""The SQL backend of the profile compiler (SQLAlchemy Core)."""

from riskengine.sql.compile import (
    ExprCompiler,
    ProfileSql,
    SqlScope,
    SqlUnsupported,
    compile_profile,
)

__all__ = ["ExprCompiler", "ProfileSql", "SqlScope", "SqlUnsupported", "compile_profile"]
