public import ORAClient

/// The API's types, as Docs/openapi.yaml names them.
public typealias Schemas = Components.Schemas
