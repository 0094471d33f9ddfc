//! The `#[job]` attribute of `sandfire-guest`: turns one function into a Sandfire job's `run`
//! export.
//!
//! It keeps the function as written and adds the glue: a hidden type implementing the generated
//! `Guest` trait (parse the input, call the function, serialize the output or convert the
//! error, each step spanned at the user's type it concerns, so a type that cannot be
//! deserialized or serialized is reported where it is written), and the bindings' `export!`.
//! A signature the glue cannot call is rejected here with an error pointing at the offending
//! code, never left to fail inside generated code.

use proc_macro::TokenStream;
use proc_macro2::{Ident, Span, TokenStream as TokenStream2};
use quote::{quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{FnArg, GenericArgument, ItemFn, PathArguments, ReturnType, Type};

const SIGNATURE: &str = "expected `fn name(ctx: Context, input: Input) -> Result<Output, JobError>` (the `ctx` parameter may be omitted)";

/// Marks the function that is this component's job. See the `sandfire-guest` crate docs.
#[proc_macro_attribute]
pub fn job(attr: TokenStream, item: TokenStream) -> TokenStream {
    let item = TokenStream2::from(item);
    match expand(attr.into(), item.clone()) {
        Ok(tokens) => tokens.into(),
        // Keep the item so an error here does not cascade into "cannot find function" errors.
        Err(e) => {
            let error = e.to_compile_error();
            quote!(#item #error).into()
        }
    }
}

fn expand(attr: TokenStream2, item: TokenStream2) -> syn::Result<TokenStream2> {
    if !attr.is_empty() {
        return Err(syn::Error::new_spanned(attr, "`#[job]` takes no arguments"));
    }
    let function: ItemFn = syn::parse2(item).map_err(|_| {
        syn::Error::new(
            Span::call_site(),
            format!("`#[job]` can only be applied to a function; {SIGNATURE}"),
        )
    })?;
    let job = Job::parse(&function)?;
    Ok(job.expand(&function))
}

/// What the glue needs to know about the user's function.
struct Job<'a> {
    /// The context parameter's type, if the function takes one.
    context: Option<&'a Type>,
    input: &'a Type,
    output: &'a Type,
}

impl<'a> Job<'a> {
    fn parse(function: &'a ItemFn) -> syn::Result<Self> {
        let sig = &function.sig;
        if let Some(token) = &sig.constness {
            return Err(syn::Error::new_spanned(
                token,
                "a job cannot be a `const fn`",
            ));
        }
        if let Some(token) = &sig.asyncness {
            return Err(syn::Error::new_spanned(
                token,
                "a job cannot be `async`: write a synchronous function",
            ));
        }
        if let Some(token) = &sig.unsafety {
            return Err(syn::Error::new_spanned(
                token,
                "a job cannot be an `unsafe fn`",
            ));
        }
        if let Some(abi) = &sig.abi {
            return Err(syn::Error::new_spanned(abi, "a job cannot declare an ABI"));
        }
        if !sig.generics.params.is_empty() {
            return Err(syn::Error::new_spanned(
                &sig.generics,
                "a job cannot be generic: name concrete input and output types",
            ));
        }
        if let Some(clause) = &sig.generics.where_clause {
            return Err(syn::Error::new_spanned(
                clause,
                "a job cannot have a `where` clause",
            ));
        }
        if let Some(variadic) = &sig.variadic {
            return Err(syn::Error::new_spanned(
                variadic,
                "a job cannot be variadic",
            ));
        }

        let mut params = Vec::with_capacity(2);
        for arg in &sig.inputs {
            match arg {
                FnArg::Receiver(receiver) => {
                    return Err(syn::Error::new_spanned(
                        receiver,
                        "a job is a free function, not a method: remove `self`",
                    ));
                }
                FnArg::Typed(pat) => {
                    if let Type::ImplTrait(ty) = &*pat.ty {
                        return Err(syn::Error::new_spanned(
                            ty,
                            "a job cannot take `impl Trait`: name a concrete input type",
                        ));
                    }
                    params.push(&*pat.ty);
                }
            }
        }
        let (context, input) = match params[..] {
            [input] if last_segment_is(input, "Context") => {
                return Err(syn::Error::new_spanned(
                    &sig.inputs,
                    format!("a job with one parameter takes only its input; {SIGNATURE}"),
                ));
            }
            [input] => (None, input),
            [context, input] => (Some(context), input),
            _ => {
                let span = if sig.inputs.is_empty() {
                    sig.paren_token.span.join()
                } else {
                    sig.inputs.span()
                };
                return Err(syn::Error::new(
                    span,
                    format!("a job takes one or two parameters; {SIGNATURE}"),
                ));
            }
        };

        let output = match &sig.output {
            ReturnType::Type(_, ty) if last_segment_is(ty, "Result") => &**ty,
            ReturnType::Type(_, ty) => {
                return Err(syn::Error::new_spanned(
                    ty,
                    "a job must return a `Result`, e.g. `Result<Output, JobError>`",
                ));
            }
            ReturnType::Default => {
                return Err(syn::Error::new_spanned(
                    &sig.ident,
                    "a job must return a `Result`, e.g. `-> Result<Output, JobError>`",
                ));
            }
        };
        Ok(Self {
            context,
            input,
            output,
        })
    }

    fn expand(&self, function: &ItemFn) -> TokenStream2 {
        let name = &function.sig.ident;
        let private = quote!(::sandfire_guest::__private);
        // Mixed-site names cannot collide with the user's names (a job may well be called
        // `input` or `result`).
        let local = |name: &str, at: Span| Ident::new(name, Span::mixed_site().located_at(at));
        let here = Span::call_site();
        let (ctx, input, result) = (
            local("ctx", here),
            local("input", here),
            local("result", here),
        );
        let (output, error) = (local("output", here), local("error", here));

        // Every step that puts a bound on a user type is spanned at that type, so an unsuitable
        // type is reported once, where the user wrote it.
        let input_ty = self.input;
        let parsed_input = if is_unit(input_ty) {
            quote!(())
        } else {
            quote_spanned! {input_ty.span()=>
                ::sandfire_guest::__private::input::<#input_ty>(&#input)?
            }
        };
        // A context of the wrong type is reported as a mismatch at the user's parameter type.
        let call = match self.context {
            Some(ty) => {
                let ctx = local("ctx", ty.span());
                quote!(#name(#ctx, #input))
            }
            None => quote!(#name(#input)),
        };
        let finish = match result_args(self.output) {
            Some((ok, err)) => {
                let to_output = quote_spanned! {ok.span()=>
                    ::sandfire_guest::__private::output::<#ok>(&#output)
                };
                let to_error = quote_spanned! {err.span()=>
                    ::sandfire_guest::__private::error::<#err>(#error)
                };
                quote! {
                    match #result {
                        ::std::result::Result::Ok(#output) => #to_output,
                        ::std::result::Result::Err(#error) => ::std::result::Result::Err(#to_error),
                    }
                }
            }
            None => {
                let ty = self.output;
                quote_spanned!(ty.span()=> ::sandfire_guest::__private::result::<#ty>(#result))
            }
        };

        quote! {
            #function

            /// The type exporting this component's job. Its fixed name makes a second `#[job]`
            /// in the same module a compile error; elsewhere in the crate the duplicate `run`
            /// export symbol is.
            #[doc(hidden)]
            #[allow(non_camel_case_types)]
            struct __sandfire_job;

            const _: () = {
                // Generated code: lints about its shape are not the user's to fix.
                #[allow(clippy::all)]
                impl #private::Guest for __sandfire_job {
                    fn run(
                        #ctx: #private::WitContext,
                        #input: ::std::vec::Vec<u8>,
                    ) -> ::std::result::Result<::std::vec::Vec<u8>, #private::WitJobError> {
                        let #ctx = #private::context(#ctx);
                        let _ = (&#ctx, &#input);
                        let #input = #parsed_input;
                        let #result = #call;
                        #finish
                    }
                }

                // Only a component has a `run` export; a native build (unit tests) does not,
                // so there the glue is marked used here instead, keeping the job from being
                // reported as dead code.
                #[cfg(target_arch = "wasm32")]
                #private::bindings::export!(
                    __sandfire_job with_types_in #private::bindings
                );
                #[cfg(not(target_arch = "wasm32"))]
                const _: #private::RunFn = <__sandfire_job as #private::Guest>::run;
            };
        }
    }
}

fn last_segment_is(ty: &Type, name: &str) -> bool {
    match ty {
        Type::Path(p) => p.path.segments.last().is_some_and(|s| s.ident == name),
        Type::Paren(p) => last_segment_is(&p.elem, name),
        Type::Group(g) => last_segment_is(&g.elem, name),
        _ => false,
    }
}

fn is_unit(ty: &Type) -> bool {
    matches!(ty, Type::Tuple(t) if t.elems.is_empty())
}

/// `Result<O, E>` → `(O, E)`; `None` for an alias such as `io::Result<O>`.
fn result_args(ty: &Type) -> Option<(&Type, &Type)> {
    let Type::Path(p) = ty else { return None };
    let PathArguments::AngleBracketed(args) = &p.path.segments.last()?.arguments else {
        return None;
    };
    let mut types = args.args.iter().filter_map(|a| match a {
        GenericArgument::Type(t) => Some(t),
        _ => None,
    });
    match (types.next(), types.next(), types.next()) {
        (Some(ok), Some(err), None) => Some((ok, err)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error(item: TokenStream2) -> String {
        match expand(TokenStream2::new(), item) {
            Ok(_) => panic!("expected a compile error"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn accepts_the_documented_signatures() {
        for item in [
            quote!(
                fn a(ctx: Context, input: Input) -> Result<Output, JobError> {}
            ),
            quote!(
                fn b(input: Input) -> Result<Output, JobError> {}
            ),
            quote!(
                pub fn c(_: ()) -> Result<(), String> {}
            ),
            quote!(
                fn d(input: serde_json::Value) -> std::io::Result<()> {}
            ),
        ] {
            let out = expand(TokenStream2::new(), item).unwrap().to_string();
            assert!(out.contains("__sandfire_job"), "{out}");
        }
    }

    #[test]
    fn rejects_what_the_glue_cannot_call() {
        let cases = [
            (
                quote!(
                    struct S;
                ),
                "can only be applied to a function",
            ),
            (
                quote!(
                    async fn f(i: u32) -> Result<u32, E> {}
                ),
                "cannot be `async`",
            ),
            (
                quote!(
                    fn f<T>(i: T) -> Result<u32, E> {}
                ),
                "cannot be generic",
            ),
            (
                quote!(
                    fn f() -> Result<u32, E> {}
                ),
                "one or two parameters",
            ),
            (
                quote!(
                    fn f(a: A, b: B, c: C) -> Result<u32, E> {}
                ),
                "one or two parameters",
            ),
            (
                quote!(
                    fn f(&self, i: u32) -> Result<u32, E> {}
                ),
                "not a method",
            ),
            (
                quote!(
                    fn f(i: impl Tr) -> Result<u32, E> {}
                ),
                "`impl Trait`",
            ),
            (
                quote!(
                    fn f(ctx: Context) -> Result<u32, E> {}
                ),
                "takes only its input",
            ),
            (
                quote!(
                    fn f(i: u32) -> u32 {}
                ),
                "must return a `Result`",
            ),
            (
                quote!(
                    fn f(i: u32) {}
                ),
                "must return a `Result`",
            ),
            (
                quote!(
                    unsafe fn f(i: u32) -> Result<u32, E> {}
                ),
                "`unsafe fn`",
            ),
        ];
        for (item, expected) in cases {
            let message = error(item.clone());
            assert!(message.contains(expected), "{item}: {message}");
        }
    }

    #[test]
    fn rejects_arguments() {
        let e = expand(
            quote!(retries = 3),
            quote!(
                fn f(i: u32) -> Result<u32, E> {}
            ),
        );
        assert!(e.unwrap_err().to_string().contains("takes no arguments"));
    }
}
