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
//! Arguments mirror tokio's: `flavor = "multi_thread" | "current_thread"` and
//! `worker_threads = N`.

use proc_macro::TokenStream;
use quote::quote;
use syn::parse::Parser;
use syn::punctuated::Punctuated;
use syn::{ItemFn, Lit, Meta, Token};

/// Runtime settings read from the attribute's arguments.
struct RuntimeArgs {
    multi_thread: bool,
    worker_threads: Option<usize>,
}

fn parse_args(args: TokenStream, default_multi_thread: bool) -> syn::Result<RuntimeArgs> {
    let mut parsed = RuntimeArgs {
        multi_thread: default_multi_thread,
        worker_threads: None,
    };
    let metas = Punctuated::<Meta, Token![,]>::parse_terminated.parse(args)?;
    for meta in metas {
        let Meta::NameValue(pair) = &meta else {
            return Err(syn::Error::new_spanned(meta, "expected `name = value`"));
        };
        let name = pair
            .path
            .get_ident()
            .map(ToString::to_string)
            .unwrap_or_default();
        let syn::Expr::Lit(syn::ExprLit { lit, .. }) = &pair.value else {
            return Err(syn::Error::new_spanned(&pair.value, "expected a literal"));
        };
        match (name.as_str(), lit) {
            ("flavor", Lit::Str(flavor)) => {
                parsed.multi_thread = match flavor.value().as_str() {
                    "multi_thread" => true,
                    "current_thread" => false,
                    _ => {
                        return Err(syn::Error::new_spanned(
                            flavor,
                            "flavor is `multi_thread` or `current_thread`",
                        ));
                    }
                }
            }
            ("worker_threads", Lit::Int(count)) => {
                parsed.worker_threads = Some(count.base10_parse()?);
            }
            _ => {
                return Err(syn::Error::new_spanned(
                    meta,
                    "unknown argument; expected `flavor = \"...\"` or `worker_threads = N`",
                ));
            }
        }
    }
    Ok(parsed)
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
    let runtime = parse_args(args, !is_test)?;
    let builder = if runtime.multi_thread {
        let workers = runtime
            .worker_threads
            .map(|n| quote!(builder.worker_threads(#n);));
        quote!({
            let mut builder = ::taskscope::__private::tokio::runtime::Builder::new_multi_thread();
            #workers
            builder
        })
    } else {
        quote!(::taskscope::__private::tokio::runtime::Builder::new_current_thread())
    };
    let body = &function.block;
    let name = function.sig.ident.to_string();
    function.block = syn::parse2(quote!({
        ::taskscope::__private::init_for_runtime();
        let body = ::taskscope::__private::body(
            async #body,
            #name,
            ::core::file!(),
            ::core::line!(),
            ::core::column!(),
        );
        let mut builder = #builder;
        ::taskscope::hooks::install(&mut builder);
        builder
            .enable_all()
            .build()
            .expect("failed to build the tokio runtime")
            .block_on(body)
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
