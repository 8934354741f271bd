//! `#[taskscope::main]` and `#[taskscope::test]`: drop-in replacements for
//! `#[tokio::main]` and `#[tokio::test]` that install the taskscope probe *before* the
//! runtime is built.
//!
//! With `#[tokio::main]`, `taskscope::init()` runs inside the body, after tokio has already
//! created the body's `block_on` span with no subscriber to see it: a stall in the body of
//! `main` itself stays invisible. Installing the probe first makes the body a task like
//! any other.
//!
//! They also put the runtime on the probe's cheaper hooks route (tokio's runtime hooks
//! instead of its tracing spans; see `docs/guide.md`, "Routes"), and wrap the body so that
//! it is tracked as a task of its own on either route.
//!
//! Arguments are tokio's, with tokio's rules: `flavor = "multi_thread" | "current_thread"
//! | "local"`, `worker_threads = N`, `start_paused = true`, `unhandled_panic = "ignore" |
//! "shutdown_runtime"`, `name = "..."` and `crate = "path::to::tokio"`, each passed to
//! the runtime builder as tokio's own macros pass it.

use proc_macro::TokenStream;
use proc_macro2::Span;
use quote::quote;
use syn::parse::Parser;
use syn::punctuated::Punctuated;
use syn::{ItemFn, Lit, Meta, Token};

/// The runtime flavors tokio's macros accept.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Flavor {
    MultiThread,
    CurrentThread,
    /// tokio's `LocalRuntime` (`--cfg tokio_unstable`).
    Local,
}

/// Runtime settings read from the attribute's arguments.
struct RuntimeArgs {
    flavor: Option<Flavor>,
    worker_threads: Option<(usize, Span)>,
    start_paused: Option<(bool, Span)>,
    unhandled_panic: Option<(UnhandledPanic, Span)>,
    name: Option<String>,
    crate_path: Option<syn::Path>,
}

#[derive(Clone, Copy)]
enum UnhandledPanic {
    Ignore,
    ShutdownRuntime,
}

fn parse_args(args: proc_macro2::TokenStream) -> syn::Result<RuntimeArgs> {
    let mut parsed = RuntimeArgs {
        flavor: None,
        worker_threads: None,
        start_paused: None,
        unhandled_panic: None,
        name: None,
        crate_path: None,
    };
    let metas = Punctuated::<Meta, Token![,]>::parse_terminated.parse2(args)?;
    for meta in metas {
        let Meta::NameValue(pair) = &meta else {
            return Err(syn::Error::new_spanned(
                meta,
                "expected `name = value`, as in `flavor = \"current_thread\"`",
            ));
        };
        let name = pair
            .path
            .get_ident()
            .map(ToString::to_string)
            .unwrap_or_default();
        let syn::Expr::Lit(syn::ExprLit { lit, .. }) = &pair.value else {
            return Err(syn::Error::new_spanned(&pair.value, "expected a literal"));
        };
        parsed.set(&name, lit, &meta)?;
    }
    Ok(parsed)
}

impl RuntimeArgs {
    fn set(&mut self, name: &str, lit: &Lit, meta: &Meta) -> syn::Result<()> {
        let span = syn::spanned::Spanned::span(meta);
        let twice = || syn::Error::new(span, format!("`{name}` set more than once"));
        match (name, lit) {
            ("flavor", Lit::Str(flavor)) if self.flavor.is_none() => {
                self.flavor = Some(Flavor::parse(flavor)?);
            }
            ("worker_threads", Lit::Int(count)) if self.worker_threads.is_none() => {
                let count: usize = count.base10_parse()?;
                if count == 0 {
                    return Err(syn::Error::new(span, "`worker_threads` may not be 0"));
                }
                self.worker_threads = Some((count, span));
            }
            ("start_paused", Lit::Bool(on)) if self.start_paused.is_none() => {
                self.start_paused = Some((on.value, span));
            }
            ("unhandled_panic", Lit::Str(what)) if self.unhandled_panic.is_none() => {
                self.unhandled_panic = Some((UnhandledPanic::parse(what)?, span));
            }
            ("name", Lit::Str(runtime_name)) if self.name.is_none() => {
                self.name = Some(runtime_name.value());
            }
            ("crate", Lit::Str(path)) if self.crate_path.is_none() => {
                self.crate_path = Some(path.parse()?);
            }
            _ if self.is_set(name) => return Err(twice()),
            _ => return Err(misused(name, span)),
        }
        Ok(())
    }

    fn is_set(&self, name: &str) -> bool {
        match name {
            "flavor" => self.flavor.is_some(),
            "worker_threads" => self.worker_threads.is_some(),
            "start_paused" => self.start_paused.is_some(),
            "unhandled_panic" => self.unhandled_panic.is_some(),
            "name" => self.name.is_some(),
            "crate" => self.crate_path.is_some(),
            _ => false,
        }
    }

    /// The runtime builder, configured as tokio's macros would; errors name the fix, as
    /// tokio's do.
    fn builder(&self, is_test: bool) -> syn::Result<proc_macro2::TokenStream> {
        let macro_name = if is_test {
            "taskscope::test"
        } else {
            "taskscope::main"
        };
        let default = if is_test {
            Flavor::CurrentThread
        } else {
            Flavor::MultiThread
        };
        let flavor = self.flavor.unwrap_or(default);
        let tokio = self
            .crate_path
            .as_ref()
            .map(|path| quote!(#path))
            .unwrap_or_else(|| quote!(::taskscope::__private::tokio));
        let settings = self.settings(flavor, &tokio, macro_name)?;
        let new = match flavor {
            Flavor::MultiThread => quote!(new_multi_thread),
            Flavor::CurrentThread | Flavor::Local => quote!(new_current_thread),
        };
        let build = match flavor {
            Flavor::Local => quote!(build_local(::core::default::Default::default())),
            _ => quote!(build()),
        };
        Ok(quote!({
            let mut builder = #tokio::runtime::Builder::#new();
            #(#settings)*
            ::taskscope::hooks::install(&mut builder);
            builder
                .enable_all()
                .#build
                .expect("failed to build the tokio runtime")
        }))
    }

    /// The builder calls for the arguments given, each checked against the flavor.
    fn settings(
        &self,
        flavor: Flavor,
        tokio: &proc_macro2::TokenStream,
        macro_name: &str,
    ) -> syn::Result<Vec<proc_macro2::TokenStream>> {
        let mut settings = Vec::new();
        if let Some((count, span)) = self.worker_threads {
            if flavor != Flavor::MultiThread {
                return Err(needs(span, "worker_threads", "multi_thread", macro_name));
            }
            settings.push(quote!(builder.worker_threads(#count);));
        }
        if let Some((paused, span)) = self.start_paused {
            if flavor == Flavor::MultiThread {
                return Err(needs(span, "start_paused", "current_thread", macro_name));
            }
            settings.push(quote!(builder.start_paused(#paused);));
        }
        if let Some((what, span)) = self.unhandled_panic {
            if flavor == Flavor::MultiThread {
                return Err(needs(span, "unhandled_panic", "current_thread", macro_name));
            }
            let what = match what {
                UnhandledPanic::Ignore => quote!(#tokio::runtime::UnhandledPanic::Ignore),
                UnhandledPanic::ShutdownRuntime => {
                    quote!(#tokio::runtime::UnhandledPanic::ShutdownRuntime)
                }
            };
            settings.push(quote!(builder.unhandled_panic(#what);));
        }
        if let Some(name) = &self.name {
            settings.push(quote!(builder.name(#name);));
        }
        Ok(settings)
    }
}

impl Flavor {
    fn parse(flavor: &syn::LitStr) -> syn::Result<Self> {
        match flavor.value().as_str() {
            "multi_thread" => Ok(Flavor::MultiThread),
            "current_thread" => Ok(Flavor::CurrentThread),
            "local" => Ok(Flavor::Local),
            _ => Err(syn::Error::new_spanned(
                flavor,
                "flavor is `multi_thread`, `current_thread` or `local`",
            )),
        }
    }
}

impl UnhandledPanic {
    fn parse(what: &syn::LitStr) -> syn::Result<Self> {
        match what.value().as_str() {
            "ignore" => Ok(UnhandledPanic::Ignore),
            "shutdown_runtime" => Ok(UnhandledPanic::ShutdownRuntime),
            _ => Err(syn::Error::new_spanned(
                what,
                "unhandled_panic is `ignore` or `shutdown_runtime`",
            )),
        }
    }
}

/// Argument `name` given a value of the wrong kind, or not an argument at all.
fn misused(name: &str, span: proc_macro2::Span) -> syn::Error {
    let message = match name {
        "flavor" | "unhandled_panic" | "name" | "crate" => format!("`{name}` takes a string"),
        "worker_threads" => "`worker_threads` takes an integer".into(),
        "start_paused" => "`start_paused` takes `true` or `false`".into(),
        _ => "unknown argument; tokio's are `flavor`, `worker_threads`, `start_paused`, \
              `unhandled_panic`, `name` and `crate`"
            .into(),
    };
    syn::Error::new(span, message)
}

/// tokio's rule that `option` only goes with `flavor`, as tokio words it.
fn needs(span: Span, option: &str, flavor: &str, macro_name: &str) -> syn::Error {
    syn::Error::new(
        span,
        format!(
            "the `{option}` option requires the `{flavor}` runtime flavor; use \
             `#[{macro_name}(flavor = \"{flavor}\")]`"
        ),
    )
}

fn expand(
    args: TokenStream,
    item: TokenStream,
    is_test: bool,
) -> syn::Result<proc_macro2::TokenStream> {
    let mut function: ItemFn = syn::parse(item)?;
    if function.sig.asyncness.take().is_none() {
        return Err(syn::Error::new_spanned(
            function.sig.fn_token,
            "the function must be `async fn`",
        ));
    }
    let runtime = parse_args(args.into())?.builder(is_test)?;
    let body = &function.block;
    let name = function.sig.ident.to_string();
    function.block = syn::parse2(quote!({
        ::taskscope::__private::init_for_runtime(#is_test);
        let body = ::taskscope::__private::body(
            async #body,
            #name,
            ::core::file!(),
            ::core::line!(),
            ::core::column!(),
        );
        let runtime = #runtime;
        // Reachable for await-chain dumps while it runs.
        let _registration = ::taskscope::__private::register_runtime(runtime.handle());
        let output = runtime.block_on(body);
        // Tasks still alive: let those already woken run, and record where the rest wait.
        runtime.block_on(::taskscope::__private::before_shutdown());
        output
    }))?;
    let test_attribute = is_test.then(|| quote!(#[::core::prelude::v1::test]));
    Ok(quote!(#test_attribute #function))
}

/// Runs an `async fn main` on a tokio runtime, with the taskscope probe installed before
/// the runtime starts (so stalls in the body of `main` itself are seen).
///
/// ```ignore
/// #[taskscope::main]
/// async fn main() {
///     // ...
/// }
/// ```
#[proc_macro_attribute]
pub fn main(args: TokenStream, item: TokenStream) -> TokenStream {
    expand(args, item, false)
        .unwrap_or_else(syn::Error::into_compile_error)
        .into()
}

/// Runs an `async fn` test on a tokio runtime (current-thread by default), with the
/// taskscope probe installed first: tasks the test leaves running are reported as alive
/// at shutdown under the test's name.
///
/// ```ignore
/// #[taskscope::test]
/// async fn fetches_the_config() {
///     // ...
/// }
/// ```
#[proc_macro_attribute]
pub fn test(args: TokenStream, item: TokenStream) -> TokenStream {
    expand(args, item, true)
        .unwrap_or_else(syn::Error::into_compile_error)
        .into()
}

#[cfg(test)]
mod tests {
    use super::{parse_args, quote};

    fn builder(args: proc_macro2::TokenStream, is_test: bool) -> Result<String, String> {
        parse_args(args)
            .and_then(|a| a.builder(is_test))
            .map(|tokens| tokens.to_string())
            .map_err(|e| e.to_string())
    }

    #[test]
    fn every_tokio_argument_reaches_the_runtime_builder() {
        let built = builder(
            quote!(
                flavor = "current_thread",
                start_paused = true,
                unhandled_panic = "shutdown_runtime",
                name = "api",
                crate = "my_tokio"
            ),
            false,
        )
        .unwrap();
        for expected in [
            "my_tokio :: runtime :: Builder :: new_current_thread",
            "builder . start_paused (true)",
            "my_tokio :: runtime :: UnhandledPanic :: ShutdownRuntime",
            "builder . name (\"api\")",
            "taskscope :: hooks :: install",
        ] {
            assert!(built.contains(expected), "{expected} in {built}");
        }
        let threaded = builder(quote!(worker_threads = 3), false).unwrap();
        assert!(threaded.contains("new_multi_thread"), "{threaded}");
        assert!(threaded.contains("worker_threads (3usize)"), "{threaded}");
        let local = builder(quote!(flavor = "local"), true).unwrap();
        assert!(local.contains("build_local"), "{local}");
    }

    #[test]
    fn arguments_tokio_rejects_are_rejected_with_the_fix() {
        let cases = [
            (
                quote!(worker_threads = 2),
                true,
                "requires the `multi_thread` runtime flavor",
            ),
            (
                quote!(start_paused = true),
                false,
                "#[taskscope::main(flavor = \"current_thread\")]",
            ),
            (
                quote!(unhandled_panic = "abort"),
                true,
                "`ignore` or `shutdown_runtime`",
            ),
            (
                quote!(flavor = "threaded"),
                false,
                "`multi_thread`, `current_thread` or `local`",
            ),
            (quote!(worker_threads = 0), false, "may not be 0"),
            (
                quote!(flavor = "local", flavor = "local"),
                false,
                "set more than once",
            ),
            (quote!(core_threads = 2), false, "tokio's are `flavor`"),
            (
                quote!(start_paused = "yes"),
                true,
                "takes `true` or `false`",
            ),
            (quote!(multi_thread), false, "expected `name = value`"),
        ];
        for (args, is_test, message) in cases {
            let error = builder(args.clone(), is_test).unwrap_err();
            assert!(error.contains(message), "{args}: {error}");
        }
    }
}
